package dev.brpc.quic.netty;

import dev.brpc.quic.engine.CloseInfo;
import dev.brpc.quic.engine.ConnectionAcceptor;
import dev.brpc.quic.engine.DialException;
import dev.brpc.quic.engine.ServerCertificateCheck;
import dev.brpc.quic.engine.DialSpec;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineLimits;
import dev.brpc.quic.engine.EngineListener;
import dev.brpc.quic.engine.ListenSpec;
import dev.brpc.quic.engine.QuicEngine;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.handler.codec.quic.QLogConfiguration;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicChannelBootstrap;
import io.netty.handler.codec.quic.QuicChannelOption;
import io.netty.handler.codec.quic.QuicClientCodecBuilder;
import io.netty.handler.codec.quic.QuicClosedChannelException;
import io.netty.handler.codec.quic.QuicCodecBuilder;
import io.netty.handler.codec.quic.QuicConnectionCloseEvent;
import io.netty.handler.codec.quic.QuicServerCodecBuilder;
import io.netty.handler.codec.quic.QuicSslContext;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.PortUnreachableException;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;

/**
 * The native engine: Netty's QUIC codec, quiche and BoringSSL through JNI, on Netty's NIO
 * transport (the epoll transport stalled on long uploads when it was tried; DESIGN.md section
 * 8).
 *
 * <p>Threads: one event-loop group of {@value #THREADS} daemon threads ({@code
 * brpc-quic-native-N}) for the whole JVM. A listener is one UDP channel, so one thread, for
 * all its connections. Dialed connections share one UDP channel and client codec per set of
 * transport parameters (the same for every channel built alike): building a codec costs
 * milliseconds and a megabyte, since quiche's configuration loads the system's CA bundle.
 *
 * <p>TLS is per dial ({@link NettyTls}), through the codec's engine provider.
 *
 * <p>Thread-safe.
 */
final class NettyEngine implements QuicEngine {
  private static final java.util.logging.Logger log =
      java.util.logging.Logger.getLogger(NettyEngine.class.getName());
  static final String NAME = "native";
  static final int THREADS = 2;
  private static final int UDP_BUFFER = 4 * 1024 * 1024;
  private static final AttributeKey<QuicSslContext> TLS = AttributeKey.valueOf("brpc.tls");
  private static final AttributeKey<String> HOST = AttributeKey.valueOf("brpc.host");

  private static final class Holder {
    static final EventLoopGroup GROUP = new MultiThreadIoEventLoopGroup(THREADS,
        new DefaultThreadFactory("brpc-quic-native", true), NioIoHandler.newFactory());
  }

  private final Map<EngineLimits, ChannelFuture> clientCodecs = new HashMap<>();

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public EngineListener listen(ListenSpec spec, ConnectionAcceptor acceptor) throws IOException {
    QuicSslContext tls = NettyTls.server(spec);
    NettyListener listener = new NettyListener(acceptor);
    QuicServerCodecBuilder server = limits(new QuicServerCodecBuilder(), spec.limits());
    QLogConfiguration serverQlog =
        spec.qlogDirectory() == null ? null : qlog(spec.qlogDirectory(), "brpc server");
    if (serverQlog != null) {
      server.option(QuicChannelOption.QLOG, serverQlog);
    }
    ChannelHandler codec = server
        .sslContext(tls)
        // No Retry round trip (kwik's server does none either); clients are authenticated
        // after the handshake (ConnectHandler).
        .tokenHandler(null)
        .handler(new ChannelInitializer<QuicChannel>() {
          @Override
          protected void initChannel(QuicChannel ch) {
            ch.pipeline().addLast(NettyConnection.INBOUND);
            listener.created(ch);
          }
        })
        .streamHandler(NettyStream.INBOUND)
        .build();
    ChannelFuture bound = new Bootstrap()
        .group(Holder.GROUP)
        .channel(NioDatagramChannel.class)
        .option(ChannelOption.SO_RCVBUF, UDP_BUFFER)
        .option(ChannelOption.SO_SNDBUF, UDP_BUFFER)
        .handler(codec)
        .bind(spec.address())
        .awaitUninterruptibly();
    if (!bound.isSuccess()) {
      throw new IOException("cannot listen on " + spec.address() + ": " + bound.cause(),
          bound.cause());
    }
    listener.bound(bound.channel());
    return listener;
  }

  private static <B extends QuicCodecBuilder<B>> B limits(B b, EngineLimits limits) {
    return b.maxIdleTimeout(limits.idleTimeoutNanos(), TimeUnit.NANOSECONDS)
        .initialMaxData(limits.connectionReceiveWindow())
        .initialMaxStreamDataBidirectionalLocal(limits.streamReceiveWindow())
        .initialMaxStreamDataBidirectionalRemote(limits.streamReceiveWindow())
        .initialMaxStreamDataUnidirectional(limits.streamReceiveWindow())
        .initialMaxStreamsBidirectional(limits.maxPeerBidiStreams())
        .initialMaxStreamsUnidirectional(limits.maxPeerUniStreams());
  }

  /** The shared UDP channel for dials with {@code limits}. */
  private ChannelFuture clientCodec(EngineLimits limits) {
    synchronized (clientCodecs) {
      ChannelFuture f = clientCodecs.get(limits);
      if (f != null && (!f.isDone() || f.isSuccess() && f.channel().isActive())) {
        return f;
      }
      ChannelHandler codec = limits(new QuicClientCodecBuilder(), limits)
          .sslEngineProvider(q -> q.attr(TLS).get().newEngine(q.alloc(), q.attr(HOST).get(),
              ((InetSocketAddress) q.remoteSocketAddress()).getPort()))
          .build();
      f = new Bootstrap()
          .group(Holder.GROUP)
          .channel(NioDatagramChannel.class)
          .option(ChannelOption.SO_RCVBUF, UDP_BUFFER)
          .option(ChannelOption.SO_SNDBUF, UDP_BUFFER)
          .handler(new ChannelInitializer<Channel>() {
            @Override
            protected void initChannel(Channel ch) {
              ch.pipeline().addLast(new HandshakeSplitter(), codec);
            }
          })
          .bind(0);
      clientCodecs.put(limits, f);
      return f;
    }
  }

  @Override
  public CompletableFuture<EngineConnection> dial(DialSpec spec) {
    CompletableFuture<EngineConnection> result = new CompletableFuture<>();
    NettyTls.Client tls;
    try {
      tls = NettyTls.client(spec);
    } catch (IOException | RuntimeException e) {
      result.completeExceptionally(new DialException(DialException.Reason.TLS,
          String.valueOf(e.getMessage()), e));
      return result;
    }
    clientCodec(spec.limits()).addListener((ChannelFuture bound) -> {
      if (!bound.isSuccess()) {
        result.completeExceptionally(new DialException(DialException.Reason.OTHER,
            "cannot open a UDP socket: " + bound.cause(), bound.cause()));
        return;
      }
      connect(bound.channel(), spec, tls, result);
    });
    return result;
  }

  /**
   * quiche's qlog into {@code directory}, one {@code <trace id>-<channel id>.qlog} per
   * connection. Netty writes a file per connection only into a directory that exists (given a
   * path that is not a directory, it writes every connection to that one file), so it is
   * created here; if it cannot be, the connection goes without qlog (one WARNING).
   */
  private static QLogConfiguration qlog(java.nio.file.Path directory, String title) {
    try {
      java.nio.file.Files.createDirectories(directory);
    } catch (IOException | RuntimeException e) {
      log.log(java.util.logging.Level.WARNING, "no qlog: cannot create " + directory, e);
      return null;
    }
    return new QLogConfiguration(directory.toAbsolutePath().toString(), title,
        "brpc-java over Netty's QUIC codec (quiche)");
  }

  /** On the codec's event loop. */
  private static void connect(Channel udp, DialSpec spec, NettyTls.Client tls,
      CompletableFuture<EngineConnection> result) {
    QuicChannel[] made = new QuicChannel[1];
    Future<QuicChannel>[] connectingRef = newFutureArray();
    QuicChannelBootstrap bootstrap = QuicChannel.newBootstrap(udp);
    QLogConfiguration clientQlog =
        spec.qlogDirectory() == null ? null : qlog(spec.qlogDirectory(), "brpc client");
    if (clientQlog != null) {
      bootstrap.option(QuicChannelOption.QLOG, clientQlog);
    }
    Future<QuicChannel> connecting = bootstrap
        .attr(NettyConnection.CREATED, ch -> {
          made[0] = ch;
          // A server that closes the connection mid-handshake (a refusal) does not fail
          // Netty's connect future until its own timeout: fail the dial when the channel goes.
          ch.closeFuture().addListener(f -> {
            Future<QuicChannel> c = connectingRef[0];
            if (c != null && !c.isDone() && !result.isDone()) {
              QuicConnectionCloseEvent peer = NettyConnection.of(ch).peerClose();
              DialException why = certificateFailure(spec, tls.check(), ch,
                  new java.nio.channels.ClosedChannelException());
              result.completeExceptionally(why != null ? why : peer != null
                  ? closedByPeer(peer, null)
                  : new DialException(DialException.Reason.OTHER,
                      "the connection closed during the handshake", null));
            }
          });
        })
        .attr(TLS, tls.context())
        .attr(HOST, spec.host())
        .handler(NettyConnection.INBOUND)
        .streamHandler(NettyStream.INBOUND)
        .remoteAddress(spec.target())
        .connect();
    connectingRef[0] = connecting;
    // A server that has sent nothing within the connect timeout costs the attempt only that;
    // one that answered may take up to the handshake timeout (as with kwik, KwikEngine).
    long total = Math.max(spec.connectTimeoutNanos(), spec.handshakeTimeoutNanos());
    ScheduledFuture<?> silent = udp.eventLoop().schedule(() -> {
      if (!connecting.isDone() && !heard(made[0])) {
        fail(made[0], result, new DialException(DialException.Reason.NO_ANSWER,
            "no answer within the connect timeout ("
                + TimeUnit.NANOSECONDS.toMillis(spec.connectTimeoutNanos()) + " ms): is the"
                + " server running, does a firewall drop UDP to it, or is it a TCP-only"
                + " server?", null));
      }
    }, spec.connectTimeoutNanos(), TimeUnit.NANOSECONDS);
    ScheduledFuture<?> deadline = udp.eventLoop().schedule(() -> {
      if (!connecting.isDone()) {
        fail(made[0], result,
            DialException.handshakeTimeout(TimeUnit.NANOSECONDS.toMillis(total), null));
      }
    }, total, TimeUnit.NANOSECONDS);
    connecting.addListener(f -> {
      silent.cancel(false);
      deadline.cancel(false);
      if (f.isSuccess()) {
        QuicChannel ch = connecting.getNow();
        if (!result.complete(NettyConnection.of(ch))) {
          ch.close(true, 0, io.netty.buffer.Unpooled.EMPTY_BUFFER); // abandoned meanwhile
        }
      } else if (!result.isDone()) {
        result.completeExceptionally(failure(f.cause(), spec, tls.check(), made[0]));
      }
    });
    result.whenComplete((c, e) -> {
      if (result.isCancelled() && made[0] != null) {
        udp.eventLoop().execute(() -> made[0].close()); // abandoned
      }
    });
  }

  /** Whether the server has sent anything to the dial's channel; on the event loop. */
  private static boolean heard(QuicChannel ch) {
    if (ch == null) {
      return false;
    }
    Future<io.netty.handler.codec.quic.QuicConnectionStats> s = ch.collectStats();
    return s.isSuccess() && s.getNow().recv() > 0;
  }

  private static void fail(QuicChannel ch, CompletableFuture<EngineConnection> result,
      DialException e) {
    result.completeExceptionally(e);
    if (ch != null) {
      ch.close();
    }
  }

  /**
   * Why a dial failed. BoringSSL reports any refused certificate as "CERTIFICATE_VERIFY_FAILED";
   * the certificate check, which ran for this connection's SSLEngine, says why in words, with
   * the real exception as the cause.
   */
  private static DialException failure(Throwable cause, DialSpec spec,
      ServerCertificateCheck check, QuicChannel ch) {
    DialException why = certificateFailure(spec, check, ch, cause);
    return why != null ? why : failure(cause);
  }

  /** The certificate check's account of a failed dial, or null if it has none. */
  private static DialException certificateFailure(DialSpec spec, ServerCertificateCheck check,
      QuicChannel ch, Throwable cause) {
    if (check != null && ch != null) {
      javax.net.ssl.SSLEngine engine = ch.sslEngine();
      String why = engine == null ? null : check.explain(engine, spec.host(), false);
      if (why != null) {
        java.security.cert.CertificateException refused = check.refusal(engine);
        DialException d = new DialException(DialException.Reason.TLS, why,
            refused != null ? refused : cause);
        if (refused != null) {
          d.addSuppressed(cause);
        }
        return d;
      }
    }
    return null;
  }

  private static DialException closedByPeer(QuicConnectionCloseEvent ev, Throwable cause) {
    CloseInfo info = new CloseInfo(ev.isApplicationClose()
        ? CloseInfo.Kind.PEER_APPLICATION : CloseInfo.Kind.PEER_TRANSPORT, ev.error(),
        NettyConnection.reasonOf(ev)); // reason() throws on an empty phrase
    return new DialException(ev.isTlsError() ? DialException.Reason.TLS
        : DialException.Reason.CLOSED_BY_PEER, info.describeHandshakeClose(), cause, info);
  }

  private static DialException failure(Throwable cause) {
    if (cause instanceof QuicClosedChannelException) {
      QuicConnectionCloseEvent ev = ((QuicClosedChannelException) cause).event();
      if (ev != null) {
        return closedByPeer(ev, cause);
      }
    }
    if (cause instanceof SSLException) {
      return new DialException(DialException.Reason.TLS, "TLS handshake failed: "
          + cause.getMessage(), cause);
    }
    if (String.valueOf(cause.getMessage()).contains("QUICHE_ERR_UNKNOWN_VERSION")) {
      return DialException.versionMismatch(null, cause); // quiche keeps the list to itself
    }
    if (cause instanceof PortUnreachableException) {
      return new DialException(DialException.Reason.REFUSED_BY_NETWORK,
          String.valueOf(cause.getMessage()), cause);
    }
    return new DialException(DialException.Reason.OTHER, String.valueOf(cause), cause);
  }

  @SuppressWarnings("unchecked")
  private static Future<QuicChannel>[] newFutureArray() {
    return (Future<QuicChannel>[]) new Future<?>[1];
  }
}
