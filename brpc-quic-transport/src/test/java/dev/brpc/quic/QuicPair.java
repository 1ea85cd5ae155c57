package dev.brpc.quic;

import dev.brpc.fixtures.SevereLogs;
import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerInterceptor;
import java.net.InetSocketAddress;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;

/**
 * A server on 127.0.0.1 (ephemeral port, self-signed certificate) and one client channel that
 * also serves callbacks, both serving {@link EchoService}. {@link #forward()} is the channel
 * the client calls the server on; {@link #reverse()} the channel the server calls the client
 * on, over the same connection.
 *
 * <p>Not thread-safe: used by one test.
 */
final class QuicPair {
  static final SelfSignedCertificate CERT = SelfSignedCertificate.generate("localhost");

  private final SevereLogs severeLogs = SevereLogs.start();
  final EchoService serverEcho = new EchoService();
  final EchoService clientEcho = new EchoService();
  final Server server;
  final Server callbacks;
  final ManagedChannel channel;
  final LinkedBlockingQueue<PeerConnection> connected = new LinkedBlockingQueue<>();
  final LinkedBlockingQueue<io.grpc.Status> disconnected = new LinkedBlockingQueue<>();
  private PeerConnection peer;

  QuicPair() throws Exception {
    this(s -> s, c -> c);
  }

  QuicPair(UnaryOperator<QuicServerBuilder> serverConfig,
      UnaryOperator<QuicChannelBuilder> channelConfig, ServerInterceptor... interceptors)
      throws Exception {
    this(serverConfig, channelConfig, c -> c, interceptors);
  }

  /** @param callbacksConfig configures the client's {@code forCallbacks()} server */
  QuicPair(UnaryOperator<QuicServerBuilder> serverConfig,
      UnaryOperator<QuicChannelBuilder> channelConfig,
      UnaryOperator<QuicServerBuilder> callbacksConfig, ServerInterceptor... interceptors)
      throws Exception {
    server = serverConfig.apply(QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .useTransportSecurity(CERT)
        .addService(io.grpc.ServerInterceptors.intercept(serverEcho, interceptors))
        .connectionListener(new QuicConnectionListener() {
          @Override
          public void connected(PeerConnection connection) {
            QuicPair.this.connected.add(connection);
          }

          @Override
          public void disconnected(PeerConnection connection, io.grpc.Status status) {
            QuicPair.this.disconnected.add(status);
          }
        })).build().start();
    callbacks = callbacksConfig.apply(QuicServerBuilder.forCallbacks()
        .addService(io.grpc.ServerInterceptors.intercept(clientEcho, interceptors)))
        .build().start();
    channel = channelConfig.apply(QuicChannelBuilder.forAddress("localhost", server.getPort())
        .trustCertificate(CERT.certificate())
        .callbackServer(callbacks)).build();
  }

  Channel forward() {
    return channel;
  }

  /** The server's channel to the client; connects the client first if needed. */
  Channel reverse() throws InterruptedException {
    return peer().channel();
  }

  PeerConnection peer() throws InterruptedException {
    if (peer == null) {
      channel.getState(true);
      peer = connected.poll(20, TimeUnit.SECONDS);
      if (peer == null) {
        throw new AssertionError("client did not connect");
      }
    }
    return peer;
  }

  /** The echo service on the side that {@code channel(reverse)} calls. */
  EchoService callee(boolean reverse) {
    return reverse ? clientEcho : serverEcho;
  }

  Channel channel(boolean reverse) throws InterruptedException {
    return reverse ? reverse() : forward();
  }

  /** Shuts everything down; fails if it does not terminate or gRPC logged a SEVERE error. */
  void close() throws InterruptedException {
    channel.shutdownNow();
    callbacks.shutdownNow();
    server.shutdownNow();
    boolean terminated = channel.awaitTermination(10, TimeUnit.SECONDS)
        & callbacks.awaitTermination(10, TimeUnit.SECONDS)
        & server.awaitTermination(10, TimeUnit.SECONDS);
    severeLogs.assertNone();
    if (!terminated) {
      throw new AssertionError("channel or servers did not terminate within 10 s");
    }
  }
}
