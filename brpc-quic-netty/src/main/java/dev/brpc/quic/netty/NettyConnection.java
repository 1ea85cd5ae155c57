package dev.brpc.quic.netty;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.engine.CloseInfo;
import dev.brpc.quic.engine.ConnectionHandler;
import dev.brpc.quic.engine.ConnectionStats;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.StreamException;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicConnectionCloseEvent;
import io.netty.handler.codec.quic.QuicConnectionPathStats;
import io.netty.handler.codec.quic.QuicConnectionStats;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.handler.codec.quic.QuicStreamLimitChangedEvent;
import io.netty.handler.codec.quic.QuicStreamType;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.Future;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One Netty QUIC channel behind the engine seam, made when Netty creates the channel (before
 * its handshake), so that nothing the peer sends early is missed.
 *
 * <p>quiche refuses {@code createStream} beyond the peer's stream limit instead of waiting, so
 * {@link #openStream} queues requests, in order, and opens them as {@link
 * QuicStreamLimitChangedEvent}s bring credit (as HTTP/2 queues calls behind
 * MAX_CONCURRENT_STREAMS). The peer's streams that arrive before {@link #start} wait here.
 *
 * <p>Thread-safe. Netty's callbacks and the opening of streams run on the channel's event
 * loop; the handler's callbacks run there too, and never block.
 */
final class NettyConnection implements EngineConnection {
  private static final Logger log = Logger.getLogger(NettyConnection.class.getName());
  private static final AttributeKey<NettyConnection> KEY = AttributeKey.valueOf("brpc.conn");
  /** QUIC's CONNECTION_REFUSED transport error (RFC 9000, section 20.1). */
  static final int CONNECTION_REFUSED = 0x2;

  /** On a dialing channel: told of the channel as soon as Netty makes it. */
  static final AttributeKey<java.util.function.Consumer<QuicChannel>> CREATED =
      AttributeKey.valueOf("brpc.created");

  /** Added to every QUIC channel's pipeline, dialed or accepted. */
  static final ChannelHandler INBOUND = new Inbound();

  final QuicChannel channel;
  private final Object lock = new Object();
  @GuardedBy("lock") private ConnectionHandler handler;
  @GuardedBy("lock") private boolean delivering;
  @GuardedBy("lock") private final List<NettyStream> early = new ArrayList<>();
  @GuardedBy("lock") private CloseInfo closeInfo;
  @GuardedBy("lock") private boolean closeDelivered;
  @GuardedBy("lock") private CloseInfo localClose;
  @GuardedBy("lock") private QuicConnectionCloseEvent peerClose;
  /** Touched on the event loop only. */
  private final ArrayDeque<PendingOpen> opens = new ArrayDeque<>();
  /** The streams whose channels are open, for {@link #describe}. */
  final Set<NettyStream> streams = ConcurrentHashMap.newKeySet();
  /** Called once the handshake is done; on an accepted connection, by the listener. */
  private volatile Runnable onActive;

  private static final class PendingOpen {
    final QuicStreamType type;
    final OpenCallback callback;

    PendingOpen(QuicStreamType type, OpenCallback callback) {
      this.type = type;
      this.callback = callback;
    }
  }

  private NettyConnection(QuicChannel channel) {
    this.channel = channel;
  }

  static NettyConnection of(QuicChannel channel) {
    return channel.attr(KEY).get();
  }

  void onActive(Runnable r) {
    onActive = r;
  }

  @Override
  public void start(ConnectionHandler handler) {
    synchronized (lock) {
      if (this.handler != null) {
        throw new IllegalStateException("already started");
      }
      this.handler = handler;
      delivering = true;
    }
    while (true) {
      NettyStream s;
      synchronized (lock) {
        if (early.isEmpty()) {
          delivering = false;
          break;
        }
        s = early.remove(0);
      }
      handler.peerStreamOpened(s);
    }
    deliverClose();
  }

  /** The peer opened {@code s}; on the event loop. */
  void onPeerStream(NettyStream s) {
    ConnectionHandler h;
    synchronized (lock) {
      if (handler == null || delivering) {
        early.add(s);
        return;
      }
      h = handler;
    }
    h.peerStreamOpened(s);
  }

  boolean closed() {
    synchronized (lock) {
      return closeInfo != null;
    }
  }

  /**
   * The peer's reason phrase. Netty 4.2.18's {@code QuicConnectionCloseEvent.reason()} throws
   * a NullPointerException when the peer sent an empty phrase (it clones a null array); before
   * this guard, that exception escaped the close listener and the connection was never
   * reported closed.
   */
  /** The CONNECTION_CLOSE the peer sent, if it sent one. Any thread. */
  QuicConnectionCloseEvent peerClose() {
    synchronized (lock) {
      return peerClose;
    }
  }

  static String reasonOf(QuicConnectionCloseEvent peer) {
    byte[] reason;
    try {
      reason = peer.reason();
    } catch (NullPointerException emptyPhrase) {
      return "";
    }
    return new String(reason, StandardCharsets.UTF_8);
  }

  /** The channel closed; on the event loop. */
  private void onClosed() {
    CloseInfo info;
    synchronized (lock) {
      QuicConnectionCloseEvent peer = peerClose;
      if (peer != null) {
        String reason = reasonOf(peer);
        info = peer.isApplicationClose()
            ? new CloseInfo(CloseInfo.Kind.PEER_APPLICATION, peer.error(), reason)
            : new CloseInfo(CloseInfo.Kind.PEER_TRANSPORT, peer.error(), reason);
      } else if (localClose != null) {
        info = localClose;
      } else if (channel.isTimedOut()) {
        info = new CloseInfo(CloseInfo.Kind.IDLE_TIMEOUT, -1, "no packets for the idle timeout");
      } else {
        info = new CloseInfo(CloseInfo.Kind.LOST, -1, "the connection closed");
      }
      if (closeInfo != null) {
        return;
      }
      closeInfo = info;
    }
    IOException gone = closedException();
    PendingOpen p;
    while ((p = opens.poll()) != null) {
      p.callback.failed(gone);
    }
    deliverClose();
  }

  private void deliverClose() {
    ConnectionHandler h;
    CloseInfo info;
    synchronized (lock) {
      if (closeInfo == null || handler == null || delivering || closeDelivered) {
        return;
      }
      closeDelivered = true;
      h = handler;
      info = closeInfo;
    }
    h.closed(info);
  }

  private IOException closedException() {
    CloseInfo info;
    synchronized (lock) {
      info = closeInfo;
    }
    return new StreamException(StreamException.Kind.CONNECTION_CLOSED, -1,
        "connection closed" + (info == null ? "" : " (" + info.kind() + ")"));
  }

  @Override
  public void openStream(boolean bidirectional, OpenCallback callback) {
    PendingOpen p = new PendingOpen(
        bidirectional ? QuicStreamType.BIDIRECTIONAL : QuicStreamType.UNIDIRECTIONAL, callback);
    if (channel.eventLoop().inEventLoop()) {
      enqueue(p);
    } else {
      channel.eventLoop().execute(() -> enqueue(p));
    }
  }

  private void enqueue(PendingOpen p) {
    if (closed() || !channel.isActive()) {
      p.callback.failed(closedException());
      return;
    }
    opens.add(p);
    drainOpens();
  }

  /** Opens what the peer's credit allows, in order; on the event loop. */
  private void drainOpens() {
    while (!opens.isEmpty() && channel.isActive()) {
      PendingOpen p = opens.peek();
      if (channel.peerAllowedStreams(p.type) <= 0) {
        return; // a QuicStreamLimitChangedEvent brings us back
      }
      opens.poll();
      Future<QuicStreamChannel> f = channel.createStream(p.type, NettyStream.INBOUND);
      f.addListener(done -> {
        if (done.isSuccess()) {
          p.callback.opened(NettyStream.of(f.getNow()));
        } else {
          p.callback.failed(closed() ? closedException()
              : new IOException("cannot open a stream: " + done.cause(), done.cause()));
        }
      });
    }
  }

  @Override
  public void close(long applicationErrorCode, String reason) {
    synchronized (lock) {
      if (localClose == null) {
        localClose = new CloseInfo(CloseInfo.Kind.LOCAL, applicationErrorCode, reason);
      }
    }
    byte[] phrase = (reason == null ? "" : reason).getBytes(StandardCharsets.UTF_8);
    channel.close(true, NettyStream.errorCode(applicationErrorCode), Unpooled.wrappedBuffer(phrase));
  }

  @Override
  public InetSocketAddress localAddress() {
    return (InetSocketAddress) channel.localSocketAddress();
  }

  @Override
  public InetSocketAddress remoteAddress() {
    return (InetSocketAddress) channel.remoteSocketAddress();
  }

  /**
   * Netty collects statistics on the event loop; off it this waits for them (bounded), which
   * is why it is for diagnostics and tests only.
   */
  @Override
  public ConnectionStats stats() {
    try {
      Future<QuicConnectionStats> s = channel.collectStats();
      Future<QuicConnectionPathStats> p = channel.collectPathStats(0);
      if (!s.await(1, TimeUnit.SECONDS) || !s.isSuccess()) {
        return ConnectionStats.UNKNOWN;
      }
      QuicConnectionStats c = s.getNow();
      long rtt = p.await(1, TimeUnit.SECONDS) && p.isSuccess() ? p.getNow().rtt() : -1;
      return new ConnectionStats(rtt, c.sentBytes(), c.recvBytes(), c.sent(), c.recv(),
          c.lost());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return ConnectionStats.UNKNOWN;
    } catch (RuntimeException e) {
      return ConnectionStats.UNKNOWN;
    }
  }

  @Override
  public String describe() {
    StringBuilder b = new StringBuilder("native connection ").append(channel)
        .append(" active=").append(channel.isActive()).append(" stats=").append(stats())
        .append(" peerAllowedBidiStreams=")
        .append(channel.peerAllowedStreams(QuicStreamType.BIDIRECTIONAL))
        .append(" queuedOpens=").append(opens.size()).append(" open streams=")
        .append(streams.size());
    for (NettyStream s : streams) {
      b.append("\n    ").append(s);
    }
    return b.toString();
  }

  @Override
  public String toString() {
    return "native connection to " + channel.remoteSocketAddress();
  }

  /** Netty's side of every QUIC channel; on the channels' event loops. */
  @ChannelHandler.Sharable
  private static final class Inbound extends ChannelInboundHandlerAdapter {
    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      QuicChannel channel = (QuicChannel) ctx.channel();
      NettyConnection c = new NettyConnection(channel);
      channel.attr(KEY).set(c);
      channel.closeFuture().addListener(f -> c.onClosed());
      java.util.function.Consumer<QuicChannel> created = channel.attr(CREATED).get();
      if (created != null) {
        created.accept(channel);
      }
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      Runnable r = of((QuicChannel) ctx.channel()).onActive;
      if (r != null) {
        r.run();
      }
      ctx.fireChannelActive();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      NettyConnection c = of((QuicChannel) ctx.channel());
      if (evt instanceof QuicStreamLimitChangedEvent) {
        c.drainOpens();
      } else if (evt instanceof io.netty.handler.codec.quic.QuicPathEvent) {
        // quiche follows a peer whose address changed (a NAT rebinding): worth a FINE line.
        log.log(Level.FINE, "{0}: {1}", new Object[] {c, evt});
      } else if (evt instanceof QuicConnectionCloseEvent) {
        synchronized (c.lock) {
          c.peerClose = (QuicConnectionCloseEvent) evt;
        }
      }
      ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      log.log(Level.FINE, ctx.channel() + ": " + cause, cause);
    }
  }
}
