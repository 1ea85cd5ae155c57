package dev.brpc.bench;

import dev.brpc.bench.proto.BenchGrpc;
import io.grpc.Attributes;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerTransportFilter;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.OpenSsl;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContextBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.net.ssl.SSLException;

/**
 * The comparison target: plain grpc-java over Netty (grpc-netty-shaded) with TLS 1.3 only, from
 * the same certificate, default settings otherwise. The TLS engine is grpc's default (OpenSSL
 * through netty-tcnative when it loads, else the JDK's); the system property
 * {@code bench.nettySsl=JDK} or {@code OPENSSL} forces one (see {@link #sslProvider()}).
 *
 * <p>Thread-safe.
 */
final class NettyStack implements Stack {
  private static final String TLS_13 = "TLSv1.3";
  private final Certificates certs;
  private volatile SslContext clientContext;

  NettyStack(Certificates certs) {
    this.certs = certs;
  }

  /** The TLS engine Netty uses in this JVM, as printed with the results. */
  static SslProvider sslProvider() {
    String forced = System.getProperty("bench.nettySsl", "");
    if (!forced.isEmpty()) {
      return SslProvider.valueOf(forced);
    }
    // GrpcSslContexts' own default.
    return OpenSsl.isAvailable() ? SslProvider.OPENSSL : SslProvider.JDK;
  }

  @Override
  public Listening serve() throws IOException {
    SslContext tls = GrpcSslContexts.configure(
            SslContextBuilder.forServer(certs.certFile().toFile(), certs.keyFile().toFile()),
            sslProvider())
        .protocols(TLS_13)
        .build();
    ConnectionCount count = new ConnectionCount();
    Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .sslContext(tls)
        .addService(new BenchService())
        .addTransportFilter(new ServerTransportFilter() {
          @Override
          public Attributes transportReady(Attributes attributes) {
            count.connected();
            return attributes;
          }

          @Override
          public void transportTerminated(Attributes attributes) {
            count.disconnected();
          }
        })
        .build()
        .start();
    return new Listening() {
      @Override
      public int port() {
        return server.getPort();
      }

      @Override
      public void awaitClients(int n, Duration timeout)
          throws InterruptedException, TimeoutException {
        count.awaitAtLeast(n, timeout);
      }
    };
  }

  @Override
  public Caller dial(int port) throws Exception {
    ManagedChannel channel = NettyChannelBuilder.forAddress("localhost", port)
        .sslContext(clientContext())
        .build();
    try {
      awaitReady(channel, Duration.ofSeconds(30));
    } catch (Exception e) {
      channel.shutdownNow();
      throw e;
    }
    return new GrpcCaller(BenchGrpc.newBlockingStub(channel), () -> {
      channel.shutdownNow();
      try {
        channel.awaitTermination(30, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
  }

  /** Built once and shared by every channel, as an application would. */
  private SslContext clientContext() throws SSLException {
    SslContext c = clientContext;
    if (c == null) {
      c = GrpcSslContexts.configure(SslContextBuilder.forClient(), sslProvider())
          .trustManager(certs.certFile().toFile())
          .protocols(TLS_13)
          .build();
      clientContext = c;
    }
    return c;
  }

  /** Connects the channel (grpc channels are lazy) and waits until it is READY. */
  private static void awaitReady(ManagedChannel channel, Duration timeout) throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    ConnectivityState state = channel.getState(true);
    while (state != ConnectivityState.READY) {
      if (state == ConnectivityState.TRANSIENT_FAILURE || state == ConnectivityState.SHUTDOWN) {
        throw new IOException("channel to the Netty server is " + state);
      }
      CompletableFuture<Void> changed = new CompletableFuture<>();
      channel.notifyWhenStateChanged(state, () -> changed.complete(null));
      changed.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      state = channel.getState(true);
    }
  }
}
