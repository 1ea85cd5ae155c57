package dev.brpc.quic.internal.kwik;

import dev.brpc.quic.internal.Pem;
import dev.brpc.quic.SelfSignedCertificate;
import java.io.ByteArrayInputStream;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.BiConsumer;
import tech.kwik.core.QuicClientConnection;
import tech.kwik.core.QuicConnection;
import tech.kwik.core.QuicStream;
import tech.kwik.core.server.ApplicationProtocolConnection;
import tech.kwik.core.server.ApplicationProtocolConnectionFactory;
import tech.kwik.core.server.ServerConnectionConfig;
import tech.kwik.core.server.ServerConnector;

/**
 * A bare kwik server and one client connected to it on loopback, configured as brpc's
 * transport configures kwik (1 MiB stream windows, a 10 MiB connection window, no Retry), for
 * tests of kwik itself: no gRPC, no framing.
 *
 * <p>Not thread-safe: one test uses it; {@code onStream} runs on kwik's callback thread.
 */
public final class RawKwik implements AutoCloseable {
  private static final SelfSignedCertificate CERT = SelfSignedCertificate.generate("localhost");
  private static final String ALPN = "brpc-kwik-repro";

  public final ServerConnector server;
  public final QuicClientConnection client;

  /**
   * @param maxStreams peer-initiated bidirectional streams the server allows at once
   * @param onStream called for each stream the client opens, with the server's connection
   */
  public RawKwik(int maxStreams, BiConsumer<QuicConnection, QuicStream> onStream) throws Exception {
    DatagramSocket socket = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
    server = ServerConnector.builder()
        .withSocket(socket)
        .withKeyStore(Pem.keyStore(Pem.readPrivateKey(new ByteArrayInputStream(
                CERT.privateKeyPem().getBytes(StandardCharsets.US_ASCII))),
                List.of(CERT.certificate())),
            Pem.KEY_ALIAS, Pem.keyPassword())
        .withConfiguration(ServerConnectionConfig.builder()
            .maxOpenPeerInitiatedBidirectionalStreams(maxStreams)
            .maxBidirectionalStreamBufferSize(1 << 20)
            .maxConnectionBufferSize(10 << 20)
            .retryRequired(false)
            .build())
        .withLogger(KwikLogger.INSTANCE)
        .build();
    server.registerApplicationProtocol(ALPN, new ApplicationProtocolConnectionFactory() {
      @Override
      public ApplicationProtocolConnection createConnection(String protocol,
          QuicConnection quic) {
        return new ApplicationProtocolConnection() {
          @Override
          public void acceptPeerInitiatedStream(QuicStream stream) {
            onStream.accept(quic, stream);
          }
        };
      }

      @Override
      public int maxConcurrentPeerInitiatedBidirectionalStreams() {
        return maxStreams;
      }
    });
    server.start();
    client = QuicClientConnection.newBuilder()
        .applicationProtocol(ALPN)
        .host("localhost")
        .proxy(InetAddress.getLoopbackAddress().getHostAddress())
        .port(socket.getLocalPort())
        .customTrustStore(Pem.trustStore(List.of(CERT.certificate())))
        .defaultStreamReceiveBufferSize(1L << 20)
        .logger(KwikLogger.INSTANCE)
        .build();
    client.connect();
  }

  @Override
  public void close() {
    client.close();
    server.close();
  }
}
