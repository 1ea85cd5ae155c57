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
import org.junit.jupiter.api.Test;
import tech.kwik.core.QuicClientConnection;

/**
 * kwik 0.10.9 dialers complete their handshakes with the native engine's server. Without the
 * wait in {@link HandshakeSplittingSocket#receive}, about 2 dials in 100 hung until the
 * connect timeout (3 of 200 here): quiche answers so fast that kwik processed the ServerHello
 * before its own {@code startHandshake()} had returned, never installed the handshake keys,
 * and discarded every Handshake packet after ("keys not installed").
 */
class KwikDialerHandshakeTest {
  @Test
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
