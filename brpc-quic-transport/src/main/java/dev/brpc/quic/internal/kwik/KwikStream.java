package dev.brpc.quic.internal.kwik;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.engine.EngineStream;
import dev.brpc.quic.engine.StreamException;
import dev.brpc.quic.engine.StreamHandler;
import java.io.IOException;
import java.io.OutputStream;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.QuicStream;

/**
 * A kwik stream behind the engine seam: kwik's blocking streams made non-blocking.
 *
 * <ul>
 *   <li>Reading: {@link KwikReceiveHook} runs {@link #arrived} whenever kwik adds bytes, the FIN
 *       or a reset, and {@link #read} takes only what kwik holds.
 *   <li>Writing: {@link KwikSendFix}'s buffer, on every stream we write to, says how much fits
 *       ({@link #writableBytes}), so kwik's write never blocks, and calls back when room frees
 *       up ({@link #requestWritable}).
 *   <li>Stopping: {@link #stopSending} sends STOP_SENDING itself and then reads and discards
 *       until the peer answers, because kwik's {@code abortReading} loses the connection's
 *       flow-control credit ({@link StopReading}); after the idle timeout it gives up.
 * </ul>
 *
 * <p>Thread-safe. Discarding after {@link #stopSending} is serialized by a counter, as the
 * transport's reader serializes its own reads.
 */
final class KwikStream implements EngineStream {
  private static final Logger log = Logger.getLogger(KwikStream.class.getName());
  private static final int DISCARD_CHUNK = 8 * 1024;

  private final KwikConnection connection;
  final QuicStream quic;
  /** This side opened it. */
  private final boolean local;
  /** Our patch of kwik's send buffer; null on a stream we cannot write (the peer's uni). */
  private final KwikSendFix.Buffer sendBuffer;
  private volatile StreamHandler handler;
  private volatile KwikReceiveHook.Input input;
  private final AtomicInteger discards = new AtomicInteger();

  private final Object lock = new Object();
  /** The input reached its FIN or failed: there is nothing left to stop. */
  @GuardedBy("lock") private boolean inputEnded;
  @GuardedBy("lock") private boolean stopped;
  @GuardedBy("lock") private StopReading.Request stopRequest;
  @GuardedBy("lock") private ScheduledFuture<?> giveUp;

  /** {@link KwikSendFix#apply} has run on {@code quic} if it is ours to write. */
  KwikStream(KwikConnection connection, QuicStream quic, boolean local) {
    this.connection = connection;
    this.quic = quic;
    this.local = local;
    this.sendBuffer = KwikSendFix.buffer(quic);
  }

  @Override
  public long id() {
    return quic.getStreamId();
  }

  @Override
  public boolean isBidirectional() {
    return quic.isBidirectional();
  }

  @Override
  public void start(StreamHandler handler) {
    this.handler = handler;
    hook();
    arrived(); // for what came before the hook
  }

  private KwikReceiveHook.Input hook() {
    synchronized (lock) {
      if (input == null && (quic.isBidirectional() || !local)) {
        input = KwikReceiveHook.install(quic, this::arrived);
      }
      return input;
    }
  }

  /** kwik added bytes, the FIN or a reset, or the connection closed. Any thread. */
  private void arrived() {
    boolean discarding;
    synchronized (lock) {
      discarding = stopped;
    }
    if (discarding) {
      discard();
      return;
    }
    StreamHandler h = handler;
    if (h != null) {
      h.readable();
    }
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    KwikReceiveHook.Input in = input;
    if (in == null) {
      return 0; // not started
    }
    try {
      int n = in.read(b, off, len);
      if (n < 0) {
        inputEnded();
      }
      return n;
    } catch (IOException e) {
      inputEnded();
      throw e;
    }
  }

  private void inputEnded() {
    synchronized (lock) {
      inputEnded = true;
    }
  }

  @Override
  public int available() {
    KwikReceiveHook.Input in = input;
    return in == null ? 0 : in.available();
  }

  @Override
  public void stopSending(long code) {
    synchronized (lock) {
      if (stopped) {
        return;
      }
      stopped = true;
      if (!inputEnded) {
        stopRequest = StopReading.request(connection.quic, quic, code);
        giveUp = KwikThreads.timer().schedule(() -> StopReading.giveUp(quic, code),
            connection.limits.idleTimeoutNanos(), TimeUnit.NANOSECONDS);
      }
    }
    hook();
    discard(); // what is there already
  }

  /**
   * Reads and discards until the peer's FIN or reset (or the give-up, or the connection's end),
   * which kwik credits to the connection; then lets the stream go. Never blocks.
   */
  private void discard() {
    if (discards.getAndIncrement() != 0) {
      return; // the running discard goes round again
    }
    byte[] sink = null;
    int missed = 1;
    do {
      boolean end;
      synchronized (lock) {
        end = inputEnded;
      }
      KwikReceiveHook.Input in = input;
      try {
        while (!end && in != null) {
          if (sink == null) {
            sink = new byte[DISCARD_CHUNK];
          }
          int n = in.read(sink, 0, sink.length);
          if (n == 0) {
            break;
          }
          end = n < 0;
        }
      } catch (IOException e) {
        log.log(Level.FINEST, "stopped stream ended", e);
        end = true;
      } catch (RuntimeException e) {
        log.log(Level.SEVERE, "stream " + quic.getStreamId() + ": discarding failed", e);
        end = true;
      }
      if (end) {
        finishDiscard();
      }
      missed = discards.addAndGet(-missed);
    } while (missed != 0);
  }

  private void finishDiscard() {
    StopReading.Request r;
    ScheduledFuture<?> timer;
    synchronized (lock) {
      inputEnded = true;
      r = stopRequest;
      timer = giveUp;
      stopRequest = null;
      giveUp = null;
    }
    if (timer != null) {
      timer.cancel(false);
    }
    if (r != null) {
      r.done();
    }
  }

  @Override
  public int writableBytes() {
    return sendBuffer == null ? 0 : sendBuffer.free();
  }

  @Override
  public boolean requestWritable() {
    if (sendBuffer == null) {
      return false;
    }
    return sendBuffer.requestWritable(() -> {
      StreamHandler h = handler;
      if (h != null) {
        h.writable();
      }
    });
  }

  @Override
  public void write(byte[] b, int off, int len, boolean fin) throws IOException {
    OutputStream out = quic.getOutputStream();
    try {
      if (len > 0) {
        if (sendBuffer == null || len > sendBuffer.free()) {
          throw new IllegalStateException(len + " bytes do not fit in the send buffer");
        }
        out.write(b, off, len); // fits: does not block
      }
      if (fin) {
        out.close();
      }
    } catch (IOException e) {
      throw connection.terminated()
          ? new StreamException(StreamException.Kind.CONNECTION_CLOSED, -1,
              "connection closed", e)
          : new StreamException(StreamException.Kind.RESET, -1,
              "stream is reset (STOP_SENDING from the peer, or our reset)", e);
    }
  }

  @Override
  public void reset(long code) {
    quic.resetStream(code); // a no-op once the FIN was written, as QUIC allows
  }

  @Override
  public String toString() {
    return "kwik stream " + quic.getStreamId();
  }
}
