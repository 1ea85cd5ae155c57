package dev.brpc.quic.netty;

import static java.nio.charset.StandardCharsets.US_ASCII;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.brpc.quic.SelfSignedCertificate;
import dev.brpc.quic.engine.CloseInfo;
import dev.brpc.quic.engine.ConnectionHandler;
import dev.brpc.quic.engine.DialSpec;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineLimits;
import dev.brpc.quic.engine.EngineListener;
import dev.brpc.quic.engine.EngineStream;
import dev.brpc.quic.engine.ListenSpec;
import dev.brpc.quic.engine.QuicEngine;
import dev.brpc.quic.internal.Engines;
import dev.brpc.quic.internal.Pem;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.security.KeyStore;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A peer's CONNECTION_CLOSE reaches the other side's {@link ConnectionHandler#closed} with its
 * code and phrase, whichever engine closes and whichever hears it, with an empty phrase too.
 * Netty 4.2.18 throws from {@code QuicConnectionCloseEvent.reason()} on an empty phrase; before
 * {@code NettyConnection} guarded it, a native server never reported such a connection closed
 * and its transport lived until the idle timeout (the contract suite's teardown caught it).
 */
class CloseReasonTest {
  private static final EngineLimits LIMITS =
      new EngineLimits(TimeUnit.SECONDS.toNanos(30), 1 << 20, 10 << 20, 100, 2);

  @ParameterizedTest(name = "{0} server, {1} client, phrase \"{2}\"")
  @CsvSource({
      "native, native, ''", "native, kwik, ''", "kwik, native, ''", "kwik, kwik, ''",
      "native, native, bye", "native, kwik, bye", "kwik, native, bye", "kwik, kwik, bye"})
  void thePeersCloseIsReported(String serverEngine, String clientEngine, String phrase)
      throws Exception {
    SelfSignedCertificate cert = SelfSignedCertificate.generate("localhost");
    CompletableFuture<CloseInfo> heard = new CompletableFuture<>();
    CompletableFuture<EngineConnection> accepted = new CompletableFuture<>();
    QuicEngine server = Engines.choose(serverEngine);
    EngineListener listener = server.listen(
        new ListenSpec(new InetSocketAddress("127.0.0.1", 0), "brpc/1", keyStore(cert),
            Pem.KEY_ALIAS, Pem.keyPassword(), LIMITS),
        c -> {
          c.start(recording(heard));
          accepted.complete(c);
        });
    try {
      EngineConnection client = Engines.choose(clientEngine).dial(new DialSpec(
              new InetSocketAddress("127.0.0.1", listener.localAddress().getPort()), "localhost",
              "brpc/1", Pem.trustStore(List.of(cert.certificate())), null, false,
              TimeUnit.SECONDS.toNanos(10), TimeUnit.SECONDS.toNanos(10), LIMITS))
          .get(20, TimeUnit.SECONDS);
      client.start(recording(new CompletableFuture<>()));
      // A close that overtakes the server's end of the handshake ends a connection the server
      // never accepted: nothing to report. Close once the server has the connection.
      accepted.get(20, TimeUnit.SECONDS);
      client.close(7, phrase);

      assertEquals(new CloseInfo(CloseInfo.Kind.PEER_APPLICATION, 7, phrase),
          heard.get(20, TimeUnit.SECONDS));
    } finally {
      listener.close();
    }
  }

  private static KeyStore keyStore(SelfSignedCertificate cert) throws IOException {
    return Pem.keyStore(
        Pem.readPrivateKey(new ByteArrayInputStream(cert.privateKeyPem().getBytes(US_ASCII))),
        List.of(cert.certificate()));
  }

  private static ConnectionHandler recording(CompletableFuture<CloseInfo> closed) {
    return new ConnectionHandler() {
      @Override
      public void peerStreamOpened(EngineStream stream) {
        stream.reset(0);
      }

      @Override
      public void closed(CloseInfo info) {
        closed.complete(info);
      }
    };
  }
}
