package dev.brpc.tcp;

import dev.brpc.quic.engine.CloseInfo;
import dev.brpc.quic.engine.ConnectionAcceptor;
import dev.brpc.quic.engine.DialException;
import dev.brpc.quic.engine.DialSpec;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineListener;
import dev.brpc.quic.engine.ListenSpec;
import dev.brpc.quic.engine.QuicEngine;
import dev.brpc.quic.engine.ServerCertificateCheck;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.ChannelOption;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContextBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import javax.net.ssl.SSLException;

/**
 * The {@code "tcp"} engine: brpc's protocol over TLS/TCP, for networks that pass no UDP. Each
 * connection is one gRPC Connect call (control frames) plus one gRPC Stream call per stream, on
 * grpc-java's Netty transport (HTTP/2); streams keep QUIC's numbering, credit, FIN, reset and
 * stop, so the transport above cannot tell it from QUIC (PROTOCOL.md, section 8). One dial is
 * one TCP connection (its own channel); every channel and server shares grpc-netty's event
 * loops, so threads do not grow with connections.
 *
 * <p>{@link #withServerSettings} gives a listener more to serve on the same port: the plain
 * gRPC services of a {@code BrpcServer}'s TCP side.
 *
 * <p>Thread-safe.
 */
public final class TcpEngine implements QuicEngine {
  /** The engine's name. */
  public static final String NAME = "tcp";
  /** How long a dialer's channel may linger after its connection closed. */
  private static final long LINGER_SECONDS = 5;

  static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "brpc-tcp-timer");
    t.setDaemon(true);
    return t;
  });

  private final Consumer<NettyServerBuilder> serverSettings;

  TcpEngine(Consumer<NettyServerBuilder> serverSettings) {
    this.serverSettings = serverSettings;
  }

  /**
   * An engine whose listeners also apply {@code settings} to their Netty server (more
   * services, interceptors, limits), after the tunnel's own.
   *
   * @param settings changes each listener's server builder
   * @return a new engine
   */
  public static TcpEngine withServerSettings(Consumer<NettyServerBuilder> settings) {
    return new TcpEngine(settings);
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public EngineListener listen(ListenSpec spec, ConnectionAcceptor acceptor) throws IOException {
    SslContext tls;
    try {
      PrivateKey key = (PrivateKey) spec.keyStore().getKey(spec.keyAlias(), spec.keyPassword());
      Certificate[] chain = spec.keyStore().getCertificateChain(spec.keyAlias());
      if (key == null || chain == null) {
        throw new IOException("no key entry \"" + spec.keyAlias() + "\" in the key store");
      }
      X509Certificate[] certs = new X509Certificate[chain.length];
      for (int i = 0; i < chain.length; i++) {
        certs[i] = (X509Certificate) chain[i];
      }
      tls = GrpcSslContexts.configure(SslContextBuilder.forServer(key, certs)).build();
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot use the server's key: " + e.getMessage(), e);
    }
    TunnelServer tunnel = new TunnelServer(spec, acceptor);
    long idle = spec.limits().idleTimeoutNanos();
    NettyServerBuilder b = NettyServerBuilder.forAddress(spec.address())
        .sslContext(tls)
        .addService(tunnel.service())
        .callExecutor(tunnel.executors())
        .permitKeepAliveTime(1, TimeUnit.SECONDS)
        .permitKeepAliveWithoutCalls(true)
        .keepAliveTime(Math.max(TimeUnit.SECONDS.toNanos(1), idle / 2), TimeUnit.NANOSECONDS)
        .keepAliveTimeout(Math.max(TimeUnit.SECONDS.toNanos(1), idle / 2), TimeUnit.NANOSECONDS)
        .maxInboundMessageSize(4 * 1024 * 1024);
    if (serverSettings != null) {
      serverSettings.accept(b);
    }
    io.grpc.Server server = b.build().start();
    InetSocketAddress bound = (InetSocketAddress) server.getListenSockets().get(0);
    return new EngineListener() {
      @Override
      public InetSocketAddress localAddress() {
        return bound;
      }

      @Override
      public void stopAccepting() {
        tunnel.stopAccepting();
      }

      @Override
      public void close() {
        server.shutdownNow();
        try {
          server.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    };
  }

  @Override
  public CompletableFuture<EngineConnection> dial(DialSpec spec) {
    CompletableFuture<EngineConnection> result = new CompletableFuture<>();
    ServerCertificateCheck check;
    SslContext tls;
    try {
      check = spec.insecure() ? null : ServerCertificateCheck.of(spec);
      tls = GrpcSslContexts.forClient()
          .trustManager(check != null ? check : InsecureTrustManagerFactory.INSTANCE
              .getTrustManagers()[0])
          .build();
    } catch (GeneralSecurityException | SSLException e) {
      result.completeExceptionally(new DialException(DialException.Reason.OTHER,
          "cannot use the trust settings: " + e.getMessage(), e));
      return result;
    }
    InetSocketAddress target = spec.target();
    long idle = spec.limits().idleTimeoutNanos();
    ManagedChannel channel = NettyChannelBuilder.forAddress(target)
        .sslContext(tls)
        .overrideAuthority(authority(spec.host(), target.getPort()))
        .directExecutor()
        .disableRetry()
        .maxInboundMessageSize(4 * 1024 * 1024)
        .withOption(ChannelOption.CONNECT_TIMEOUT_MILLIS,
            (int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(spec.connectTimeoutNanos())))
        .keepAliveTime(Math.max(TimeUnit.SECONDS.toNanos(10), idle / 3), TimeUnit.NANOSECONDS)
        .keepAliveTimeout(Math.max(TimeUnit.SECONDS.toNanos(1), idle / 3), TimeUnit.NANOSECONDS)
        .keepAliveWithoutCalls(true)
        .build();
    new Dial(spec, channel, check, result).start();
    return result;
  }

  private static String authority(String host, int port) {
    return (host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host) + ":" + port;
  }

  /** One dial: the Connect call until WELCOME, then the connection's control listener. */
  private static final class Dial extends ClientCall.Listener<byte[]> {
    private final DialSpec spec;
    private final ManagedChannel channel;
    private final ServerCertificateCheck check;
    private final CompletableFuture<EngineConnection> result;
    private final Pipes.Client control;
    private volatile TunnelConnection connection;

    Dial(DialSpec spec, ManagedChannel channel, ServerCertificateCheck check,
        CompletableFuture<EngineConnection> result) {
      this.spec = spec;
      this.channel = channel;
      this.check = check;
      this.result = result;
      this.control = new Pipes.Client(channel.newCall(Tunnel.CONNECT, CallOptions.DEFAULT));
    }

    void start() {
      control.call.start(this, new Metadata());
      control.send(Tunnel.frame(Tunnel.HELLO, Tunnel.utf8(spec.alpn()), Tunnel.VERSION,
          spec.limits().maxPeerBidiStreams(), spec.limits().maxPeerUniStreams()));
      control.request(1);
      long timeout = spec.connectTimeoutNanos() + spec.handshakeTimeoutNanos();
      TIMER.schedule(() -> {
        if (connection == null && fail(DialException.handshakeTimeout(
            TimeUnit.NANOSECONDS.toMillis(timeout), null))) {
          control.abort("handshake timeout");
        }
      }, timeout, TimeUnit.NANOSECONDS);
      result.whenComplete((c, e) -> {
        if (result.isCancelled()) {
          control.abort("dial abandoned");
          channel.shutdownNow();
        }
      });
    }

    private boolean fail(DialException e) {
      boolean failed = result.completeExceptionally(e);
      if (failed) {
        channel.shutdownNow();
      }
      return failed;
    }

    @Override
    public void onMessage(byte[] f) {
      TunnelConnection c = connection;
      try {
        if (c != null) {
          if (f.length > 0 && f[0] == Tunnel.OPEN) {
            Tunnel.Reader r = new Tunnel.Reader(f, 1);
            long id = r.varint();
            r.end();
            openPeerStream(c, id);
          } else {
            c.onControlFrame(f);
          }
        } else {
          handshake(f);
        }
      } catch (Tunnel.Malformed e) {
        if (c != null) {
          c.closeForViolation(e.getMessage());
        } else {
          fail(new DialException(DialException.Reason.OTHER, "the server's tunnel handshake is"
              + " malformed (" + e.getMessage() + "): not a brpc server?", e));
          control.abort("malformed handshake");
        }
      }
      control.request(1);
    }

    private void handshake(byte[] f) {
      if (f.length == 0) {
        throw new Tunnel.Malformed("empty frame");
      }
      Tunnel.Reader r = new Tunnel.Reader(f, 1);
      if (f[0] == Tunnel.CLOSE) {
        boolean transport = r.u8() == 1;
        long code = r.varint();
        CloseInfo info = new CloseInfo(transport ? CloseInfo.Kind.PEER_TRANSPORT
            : CloseInfo.Kind.PEER_APPLICATION, code, r.rest());
        fail(new DialException(transport && code >= 0x100 ? DialException.Reason.TLS
            : DialException.Reason.CLOSED_BY_PEER, info.describeHandshakeClose(), null, info));
        control.finish();
        return;
      }
      if (f[0] != Tunnel.WELCOME) {
        throw new Tunnel.Malformed("expected WELCOME, got frame type " + f[0]);
      }
      long creditBidi = r.varint();
      long creditUni = r.varint();
      byte[] token = r.bytes(Tunnel.TOKEN_SIZE);
      r.end();
      InetSocketAddress remote = address(control.call.getAttributes()
          .get(io.grpc.Grpc.TRANSPORT_ATTR_REMOTE_ADDR), spec.target());
      InetSocketAddress local = address(control.call.getAttributes()
          .get(io.grpc.Grpc.TRANSPORT_ATTR_LOCAL_ADDR), new InetSocketAddress(0));
      TunnelConnection c = new TunnelConnection(true, token, control, this::openLocalStream,
          spec.limits().streamReceiveWindow(), spec.limits().maxPeerBidiStreams(),
          spec.limits().maxPeerUniStreams(), creditBidi, creditUni, local, remote,
          this::closed);
      connection = c;
      if (!result.complete(c)) {
        c.close(0, "dial abandoned");
      }
    }

    private void closed() {
      channel.shutdown();
      TIMER.schedule(channel::shutdownNow, LINGER_SECONDS, TimeUnit.SECONDS);
    }

    private Pipe openLocalStream(TunnelStream s) {
      Pipes.Client p = streamCall(connection, s.id());
      return p;
    }

    private void openPeerStream(TunnelConnection c, long id) {
      Pipes.Client p = streamCall(c, id);
      c.attached(id, p);
    }

    /** A Stream call that carries stream {@code id}: ATTACH first. */
    private Pipes.Client streamCall(TunnelConnection c, long id) {
      ClientCall<byte[], byte[]> call = channel.newCall(Tunnel.STREAM, CallOptions.DEFAULT);
      Pipes.Client p = new Pipes.Client(call);
      call.start(new ClientCall.Listener<>() {
        @Override
        public void onMessage(byte[] f) {
          TunnelStream s = p.stream;
          try {
            s.onFrame(f);
          } catch (Tunnel.Malformed e) {
            c.closeForViolation("stream " + id + ": " + e.getMessage());
          }
        }

        @Override
        public void onReady() {
          TunnelStream s = p.stream;
          if (s != null) {
            s.onReady();
          }
        }

        @Override
        public void onClose(Status status, Metadata trailers) {
          TunnelStream s = p.stream;
          if (s != null) {
            s.onCallClosed(status.isOk() ? "ended" : status.toString());
          }
        }
      }, new Metadata());
      call.sendMessage(Tunnel.frame(Tunnel.ATTACH, c.token, id));
      return p;
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      TunnelConnection c = connection;
      if (c != null) {
        c.onControlClosed(new CloseInfo(status.getCode() == Status.Code.UNAVAILABLE
            && String.valueOf(status.getDescription()).contains("eepalive")
            ? CloseInfo.Kind.IDLE_TIMEOUT : CloseInfo.Kind.LOST, -1,
            status.isOk() ? "the server ended the connection's control call"
                : "the TCP connection failed: " + status.getCode()
                + (status.getDescription() == null ? "" : " " + status.getDescription())));
        return;
      }
      fail(DialFailures.of(status, spec, check));
    }
  }

  private static InetSocketAddress address(java.net.SocketAddress a, InetSocketAddress fallback) {
    return a instanceof InetSocketAddress ? (InetSocketAddress) a : fallback;
  }
}
