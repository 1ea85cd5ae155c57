package dev.brpc.quic.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.brpc.quic.QuicServerBuilder;
import dev.brpc.quic.SelfSignedCertificate;
import dev.brpc.quic.internal.Pem;
import dev.brpc.quic.internal.kwik.HandshakeSplittingSocket;
import dev.brpc.quic.internal.kwik.KwikLogger;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Disabled;
import org.junit.jupiter.api.Test;
import tech.kwik.core.QuicClientConnection;

/**
 * The reproduction of an open interop fault (RELIABILITY.md, "kwik dialer, native server"): a
 * kwik 0.10.9 client's handshake with the native engine's server hangs in about 2 dials of 100
 * (measured: 7, 5, 4, 2 and 1 of 200 in five runs, with and without {@link
 * HandshakeSplittingSocket}). kwik's log of a failed dial shows the ServerHello processed and
 * then every Handshake packet discarded, "keys not installed", until the connect timeout; in a
 * good dial kwik logs its ClientHello first. Disabled until the cause is fixed: run it by hand.
 */
class KwikDialerHandshakeTest {
  @Test
  @Disabled("open kwik-client/quiche-server handshake fault; see the class comment")
  void everyKwikDialCompletes() throws Exception {
    SelfSignedCertificate cert = SelfSignedCertificate.generate("localhost");
    Server server = QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .engine("native")
        .useTransportSecurity(cert)
        .addService(ServerServiceDefinition.builder("none").build())
        .build().start();
    List<String> failed = new ArrayList<>();
    try {
      for (int i = 0; i < 200; i++) {
        QuicClientConnection raw = QuicClientConnection.newBuilder()
            .applicationProtocol("brpc/1")
            .host("localhost").port(server.getPort())
            .customTrustStore(Pem.trustStore(List.of(cert.certificate())))
            .maxOpenPeerInitiatedUnidirectionalStreams(2)
            .connectTimeout(Duration.ofSeconds(3))
            .socketFactory(d -> new HandshakeSplittingSocket())
            .logger(KwikLogger.INSTANCE)
            .build();
        try {
          raw.connect();
        } catch (IOException e) {
          failed.add(i + ": " + e.getMessage());
        } finally {
          raw.close();
        }
      }
    } finally {
      server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
    assertEquals(List.of(), failed);
  }
}
