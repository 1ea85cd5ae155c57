package dev.brpc.quic.netty;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.engine.EngineStream;
import dev.brpc.quic.engine.StreamException;
import dev.brpc.quic.engine.StreamHandler;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownReadComplete;
import io.netty.handler.codec.quic.DefaultQuicStreamFrame;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.handler.codec.quic.QuicStreamResetException;
import io.netty.handler.codec.quic.QuicStreamType;
import io.netty.util.AttributeKey;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One Netty QUIC stream channel behind the engine seam.
 *
 * <p>Reading: the channel runs with auto-read off. The event loop pulls from quiche while fewer
 * than {@value #READ_AHEAD} bytes wait here unread, so the bytes that count against QUIC flow
 * control are those quiche holds plus at most that much here: a handler that stops reading
 * stops the peer, as with kwik. {@link #read} takes from the queue on any thread.
 *
 * <p>Writing: Netty would queue writes without bound, so {@link #writableBytes} is quiche's
 * send capacity for the stream (peer credit, congestion window) less what was handed over and
 * not yet passed to quiche; while the stream is writable but its capacity not yet known, one
 * {@value #WRITE_CHUNK}-byte chunk. A write beyond quiche's capacity waits in Netty's queue
 * and makes the channel unwritable, so at most one chunk waits there. Writes are copied into
 * a direct buffer and run on the event loop, in order.
 *
 * <p>Netty keeps a stream channel until both FINs have passed; a stream this side stopped
 * reading, or that one side reset, is closed here once both halves are done, so that its
 * channel does not live as long as the connection.
 *
 * <p>Thread-safe. Netty's callbacks run on the connection's event loop; the handler's may run
 * there too, and never block.
 */
final class NettyStream implements EngineStream {
  static final int READ_AHEAD = 64 * 1024;
  static final int WRITE_CHUNK = 64 * 1024;
  private static final Logger log = Logger.getLogger(NettyStream.class.getName());
  private static final AttributeKey<NettyStream> KEY = AttributeKey.valueOf("brpc.stream");

  /** Added to every stream channel's pipeline, ours and the peer's. */
  static final ChannelHandler INBOUND = new Inbound();

  final QuicStreamChannel channel;
  private final NettyConnection connection;

  private final Object lock = new Object();
  @GuardedBy("lock") private StreamHandler handler;
  @GuardedBy("lock") private final ArrayDeque<ByteBuf> received = new ArrayDeque<>();
  @GuardedBy("lock") private int buffered;
  /** The peer's FIN came; it follows everything in {@link #received}. */
  @GuardedBy("lock") private boolean fin;
  /** read() returned -1. */
  @GuardedBy("lock") private boolean finRead;
  @GuardedBy("lock") private StreamException readFailure;
  @GuardedBy("lock") private boolean stopped;
  @GuardedBy("lock") private long handedOver;
  @GuardedBy("lock") private boolean finWritten;
  @GuardedBy("lock") private boolean resetSent;
  @GuardedBy("lock") private StreamException writeFailure;
  private final AtomicBoolean wantWritable = new AtomicBoolean();
  private final java.util.concurrent.atomic.AtomicInteger queuedTasks =
      new java.util.concurrent.atomic.AtomicInteger();

  private NettyStream(QuicStreamChannel channel, NettyConnection connection) {
    this.channel = channel;
    this.connection = connection;
  }

  static NettyStream of(QuicStreamChannel channel) {
    return channel.attr(KEY).get();
  }

  @Override
  public long id() {
    return channel.streamId();
  }

  @Override
  public boolean isBidirectional() {
    return channel.type() == QuicStreamType.BIDIRECTIONAL;
  }

  @Override
  public void start(StreamHandler handler) {
    boolean pending;
    synchronized (lock) {
      if (this.handler != null) {
        throw new IllegalStateException("already started");
      }
      this.handler = handler;
      pending = buffered > 0 || fin || readFailure != null;
    }
    if (pending) {
      handler.readable();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Reading.

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    int n = 0;
    boolean refill;
    synchronized (lock) {
      if (stopped) {
        throw new StreamException(StreamException.Kind.LOCAL, -1, "this side stopped reading");
      }
      if (readFailure != null) {
        throw readFailure;
      }
      while (n < len && !received.isEmpty()) {
        ByteBuf head = received.peek();
        int k = Math.min(len - n, head.readableBytes());
        head.readBytes(b, off + n, k);
        n += k;
        if (!head.isReadable()) {
          received.poll().release();
        }
      }
      int before = buffered;
      buffered -= n;
      refill = before >= READ_AHEAD && buffered < READ_AHEAD && !fin;
      if (n == 0 && fin && len > 0) {
        finRead = true;
      }
    }
    if (refill) {
      onLoop(this::pull);
    }
    if (n == 0 && len > 0 && finRead()) {
      onLoop(this::closeIfDone);
      return -1;
    }
    return n;
  }

  private boolean finRead() {
    synchronized (lock) {
      return finRead;
    }
  }

  @Override
  public int available() {
    synchronized (lock) {
      return stopped || readFailure != null ? 0 : buffered;
    }
  }

  @Override
  public void stopSending(long code) {
    synchronized (lock) {
      if (stopped) {
        return;
      }
      stopped = true;
      discardLocked();
    }
    onLoop(() -> {
      if (channel.isActive() && !channel.isInputShutdown()) {
        channel.shutdownInput(errorCode(code));
      }
      closeIfDone();
    });
  }

  @GuardedBy("lock")
  private void discardLocked() {
    for (ByteBuf b : received) {
      b.release();
    }
    received.clear();
    buffered = 0;
  }

  /** Asks Netty for more, if little waits here; on the event loop. */
  private void pull() {
    synchronized (lock) {
      if (fin || stopped || readFailure != null || buffered >= READ_AHEAD) {
        return;
      }
    }
    if (channel.isActive()) {
      channel.read();
    }
  }

  private void notifyReadable() {
    StreamHandler h;
    synchronized (lock) {
      h = stopped ? null : handler;
    }
    if (h != null) {
      h.readable();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Writing.

  @Override
  public int writableBytes() {
    long handed;
    synchronized (lock) {
      if (finWritten || resetSent || writeFailure != null) {
        return 0;
      }
      handed = handedOver;
    }
    if (!channel.isWritable()) {
      return 0;
    }
    long room = Math.max(channel.bytesBeforeUnwritable(), WRITE_CHUNK) - handed;
    return (int) Math.max(0, Math.min(room, Integer.MAX_VALUE));
  }

  @Override
  public boolean requestWritable() {
    if (writableBytes() > 0 || writeGone()) {
      return true;
    }
    wantWritable.set(true);
    if ((writableBytes() > 0 || writeGone()) && wantWritable.compareAndSet(true, false)) {
      return true;
    }
    return false;
  }

  private boolean writeGone() {
    synchronized (lock) {
      return writeFailure != null || resetSent;
    }
  }

  /** There may be room again; on the event loop. */
  private void maybeWritable() {
    if (wantWritable.get() && (writableBytes() > 0 || writeGone())
        && wantWritable.compareAndSet(true, false)) {
      StreamHandler h;
      synchronized (lock) {
        h = handler;
      }
      if (h != null) {
        h.writable();
      }
    }
  }

  @Override
  public void write(byte[] b, int off, int len, boolean fin) throws IOException {
    synchronized (lock) {
      if (writeFailure != null) {
        throw writeFailure;
      }
      if (resetSent || finWritten) {
        throw new StreamException(StreamException.Kind.LOCAL, -1,
            resetSent ? "this side reset the stream" : "the FIN was written");
      }
      handedOver += len;
      finWritten = fin;
    }
    ByteBuf data = len == 0 ? Unpooled.EMPTY_BUFFER
        : channel.alloc().directBuffer(len).writeBytes(b, off, len);
    Object message = fin ? new DefaultQuicStreamFrame(data, true) : data;
    onLoop(() -> {
      ChannelFuture f = channel.writeAndFlush(message);
      synchronized (lock) {
        handedOver -= len;
      }
      if (f.isDone()) {
        written(f);
      } else {
        f.addListener(this::written);
      }
      maybeWritable();
    });
  }

  private void written(io.netty.util.concurrent.Future<? super Void> f) {
    if (f.isSuccess()) {
      closeIfDone();
      return;
    }
    StreamException e = new StreamException(
        channel.parent().isActive() ? StreamException.Kind.RESET
            : StreamException.Kind.CONNECTION_CLOSED,
        -1, "write failed: " + f.cause(), f.cause());
    writeFailed(e);
  }

  private void writeFailed(StreamException e) {
    StreamHandler h;
    synchronized (lock) {
      if (writeFailure != null || resetSent) {
        return;
      }
      writeFailure = e;
      h = handler;
    }
    wantWritable.set(false);
    if (h != null) {
      h.writeFailed(e);
    }
    closeIfDone();
  }

  @Override
  public void reset(long code) {
    synchronized (lock) {
      if (finWritten || resetSent || writeFailure != null) {
        return;
      }
      resetSent = true;
    }
    maybeWritable();
    onLoop(() -> {
      if (channel.isActive() && !channel.isOutputShutdown()) {
        channel.shutdownOutput(errorCode(code));
      }
      closeIfDone();
    });
  }

  /**
   * Closes the channel once both halves are over, so Netty forgets it; on the event loop. A
   * FIN still in Netty's queue keeps the output open (closing would drop the queued bytes).
   */
  private void closeIfDone() {
    if (!channel.isActive()) {
      return;
    }
    boolean readDone;
    synchronized (lock) {
      readDone = stopped || readFailure != null || finRead || !isBidirectional()
          && channel.isLocalCreated();
    }
    boolean writeDone = channel.isOutputShutdown()
        || !isBidirectional() && !channel.isLocalCreated();
    if (readDone && writeDone) {
      channel.close();
    }
  }

  /** The channel ended: the connection closed, or both halves are done. */
  private void closed() {
    StreamException gone = new StreamException(
        connection.closed() || !channel.parent().isActive()
            ? StreamException.Kind.CONNECTION_CLOSED : StreamException.Kind.LOCAL,
        -1, "the stream was closed");
    boolean tellReader;
    synchronized (lock) {
      tellReader = !fin && readFailure == null && !stopped;
      if (tellReader) {
        readFailure = gone;
        discardLocked();
      }
    }
    if (tellReader) {
      notifyReadable();
    }
    boolean writing;
    synchronized (lock) {
      writing = !finWritten && !resetSent && writeFailure == null;
    }
    if (writing) {
      writeFailed(gone);
    }
  }

  /**
   * Runs {@code r} on the event loop after every task this stream handed there before: inline
   * when already on the loop and none waits (a write from a handler, say), else queued. Writes
   * and resets must keep their order.
   */
  private void onLoop(Runnable r) {
    if (channel.eventLoop().inEventLoop() && queuedTasks.get() == 0) {
      r.run();
      return;
    }
    queuedTasks.incrementAndGet();
    channel.eventLoop().execute(() -> {
      try {
        r.run();
      } finally {
        queuedTasks.decrementAndGet();
      }
    });
  }

  /** Netty takes 32-bit codes; brpc's fit (PROTOCOL.md); anything larger becomes the largest. */
  static int errorCode(long code) {
    return code < 0 ? 0 : (int) Math.min(code, Integer.MAX_VALUE);
  }

  @Override
  public String toString() {
    synchronized (lock) {
      return "stream " + id() + " (started " + (handler != null) + ", buffered " + buffered
          + ", fin " + fin + ", finRead " + finRead + ", finWritten " + finWritten + ", reset "
          + resetSent + ", stopped " + stopped + ", readFailure " + readFailure
          + ", writeFailure " + writeFailure + ", handedOver " + handedOver + ", wantWritable "
          + wantWritable.get() + ", writable " + channel.isWritable() + "/"
          + channel.bytesBeforeUnwritable() + ", outputShutdown " + channel.isOutputShutdown()
          + ", inputShutdown " + channel.isInputShutdown() + ")";
    }
  }

  /** Netty's side; one instance for every stream channel, on their event loops. */
  @ChannelHandler.Sharable
  private static final class Inbound extends ChannelInboundHandlerAdapter {
    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      QuicStreamChannel channel = (QuicStreamChannel) ctx.channel();
      NettyConnection connection = NettyConnection.of(channel.parent());
      NettyStream s = new NettyStream(channel, connection);
      channel.attr(KEY).set(s);
      connection.streams.add(s);
      // Before the channel is registered, so before anything is read. Half-closure exists for
      // bidirectional streams only (a unidirectional one has one direction).
      channel.config().setAutoRead(false);
      if (channel.type() == QuicStreamType.BIDIRECTIONAL) {
        channel.config().setOption(io.netty.channel.ChannelOption.ALLOW_HALF_CLOSURE, true);
      }
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      NettyStream s = of((QuicStreamChannel) ctx.channel());
      if (!s.channel.isLocalCreated()) {
        s.connection.onPeerStream(s);
      }
      s.pull();
      ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      NettyStream s = of((QuicStreamChannel) ctx.channel());
      ByteBuf data = (ByteBuf) msg;
      boolean keep;
      synchronized (s.lock) {
        keep = !s.stopped && s.readFailure == null && data.isReadable();
        if (keep) {
          s.received.add(data);
          s.buffered += data.readableBytes();
        }
      }
      if (!keep) {
        data.release();
        return;
      }
      s.notifyReadable();
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      of((QuicStreamChannel) ctx.channel()).pull();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof ChannelInputShutdownReadComplete) {
        NettyStream s = of((QuicStreamChannel) ctx.channel());
        synchronized (s.lock) {
          s.fin = true;
        }
        s.notifyReadable();
      }
      ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      NettyStream s = of((QuicStreamChannel) ctx.channel());
      s.maybeWritable();
      s.closeIfDone(); // a FIN that waited in Netty's queue may be out now
      ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      NettyStream s = of((QuicStreamChannel) ctx.channel());
      if (cause instanceof QuicStreamResetException) {
        long code = ((QuicStreamResetException) cause).applicationProtocolCode();
        boolean tell;
        synchronized (s.lock) {
          tell = s.readFailure == null && !s.stopped;
          if (tell) {
            s.readFailure = new StreamException(StreamException.Kind.RESET, code,
                "stream reset by the peer (code " + code + ")");
            s.discardLocked();
          }
        }
        if (tell) {
          s.notifyReadable();
        }
        s.closeIfDone();
        return;
      }
      log.log(Level.FINE, s + ": " + cause, cause);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      NettyStream s = of((QuicStreamChannel) ctx.channel());
      s.connection.streams.remove(s);
      s.closed();
      ctx.fireChannelInactive();
    }
  }
}
