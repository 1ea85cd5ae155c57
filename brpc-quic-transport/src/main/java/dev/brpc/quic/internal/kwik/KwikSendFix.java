package dev.brpc.quic.internal.kwik;

import java.io.OutputStream;
import java.lang.reflect.Field;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.QuicStream;
import tech.kwik.core.frame.StreamFrame;
import tech.kwik.core.impl.Version;
import tech.kwik.core.stream.SendBuffer;

/**
 * Works around two races in kwik 0.10.9's stream send buffer: a lost send request, which
 * strands written data in the buffer, and a reset that clears the buffer under the sender
 * thread, which kills that thread. Applied to every stream we write to, before its first
 * write.
 *
 * <p>The race: {@code StreamOutputStreamImpl.scheduleSendStreamFrameRequest} reads the counter
 * {@code sendRequestsQueued}, queues a send request when it is 0, and only then increments it.
 * The sender thread can run that request in between: it decrements the counter to -1, sends one
 * frame and, with data left, tries to queue the next request, which it skips because the
 * counter is not 0. The writer then increments the counter back to 0. Nothing is queued any
 * more: the rest of the buffer is never sent (a write of more than one packet's worth arrives
 * in part and the call hangs), and a writer blocked on a full buffer is never woken. Measured
 * on 2 cores: a 4 KiB request stalled after 3 of its 4 packets in about one call in 50;
 * {@code KwikSendFixTest} keeps the reproduction. Upstream kwik still has the race.
 *
 * <p>The fix: the stream's {@code SendBuffer} is replaced, while still empty, by a subclass
 * whose {@link SendBuffer#hasData()} (which the sender thread calls after decrementing the
 * counter and before deciding whether to queue the next request) first waits until the counter
 * is no longer negative, that is, until the thread that queued the request has counted it.
 * That thread is a few instructions away from the increment and holds no lock the sender needs
 * (kwik's request queue is lock-free), so the wait is usually a short spin. It must not give
 * up early: a preempted writer or a GC pause can hold the counter negative for many
 * milliseconds, and giving up then is exactly the stall (with a 100 ms bound, 200 loaded
 * connections lost one to a stalled stream in one run out of three). It gives up, loudly,
 * only after 10 s.
 *
 * <p>The same subclass closes a second race, which killed a connection's kwik sender thread: a
 * reset ({@code StreamOutputStreamImpl.reset}, from our cancel or from the peer's STOP_SENDING
 * on kwik's receiver thread) clears the buffer while the sender thread is in {@code
 * SendBuffer.getStreamFrame}, between its {@code isEmpty()} and its {@code peek()}, which then
 * returns null: a NullPointerException ends the sender thread. A client connection then aborts;
 * a server connection (kwik's {@code ServerConnectionImpl.abortConnection} only unregisters
 * it) stays up without sending anything, so its calls hang and its peer idles out. Here
 * {@code getStreamFrame} and {@code clear} exclude each other. The window is a few
 * instructions wide, too narrow to reproduce on a bare buffer; it was caught in the contract
 * and call-semantics suites, looped: 2 of 3 runs lost a connection to it ({@code
 * NullPointerException} at {@code SendBuffer.getStreamFrame(SendBuffer.java:103)} on a
 * sender thread, logged by {@link KwikLogger}), and it was the stall RELIABILITY.md describes.
 *
 * <p>This needs reflective access to kwik's internal package, which the class path gives. On
 * the module path the JVM needs
 * {@code --add-opens tech.kwik.core/tech.kwik.core.stream=ALL-UNNAMED}; without it
 * {@link #requireAvailable()} fails the server or channel at build time, loudly, rather than
 * letting calls hang.
 *
 * <p>The patched buffer also tells its writer how much it can take without blocking, and calls
 * it back when room frees up ({@link #buffer}): kwik's own writers block instead, and the
 * engine seam has no blocking writes ({@link KwikStream#write}). A reset clears the buffer and
 * calls the writer back too, so a writer waiting for room learns that the stream is gone (a
 * writer blocked in kwik's own write may miss that wakeup).
 *
 * <p>Public for the benchmark's raw-kwik row, which needs the same fix; internal like the rest
 * of this package.
 *
 * <p>Thread-safe. {@link #apply} must run before anything is written to the stream.
 */
public final class KwikSendFix {
  private static final Logger log = Logger.getLogger(KwikSendFix.class.getName());
  private static final long YIELD_NANOS = TimeUnit.MILLISECONDS.toNanos(1);
  private static final long PARK_NANOS = TimeUnit.MICROSECONDS.toNanos(200);
  /**
   * Giving up breaks the chain of send requests, so the wait outlasts any preemption or GC
   * pause; only a writer that died between its two steps would make it expire.
   */
  private static final long MAX_WAIT_NANOS = TimeUnit.SECONDS.toNanos(10);
  private static final Field SEND_BUFFER;
  private static final Field COUNTER;
  private static final RuntimeException UNAVAILABLE;

  static {
    Field buffer = null;
    Field counter = null;
    RuntimeException error = null;
    try {
      Class<?> c = Class.forName("tech.kwik.core.stream.StreamOutputStreamImpl");
      buffer = c.getDeclaredField("sendBuffer");
      counter = c.getDeclaredField("sendRequestsQueued");
      if (buffer.getType() != SendBuffer.class || counter.getType() != AtomicInteger.class) {
        throw new NoSuchFieldException("unexpected field types");
      }
      buffer.setAccessible(true);
      counter.setAccessible(true);
    } catch (ReflectiveOperationException | RuntimeException e) {
      buffer = null;
      counter = null;
      error = unusable("apply its fix for kwik's stalled-send race", e);
    }
    SEND_BUFFER = buffer;
    COUNTER = counter;
    UNAVAILABLE = error;
  }

  private KwikSendFix() {}

  /**
   * The error for a kwik internal that brpc-java reaches into and cannot reach in this JVM:
   * kwik's packages are closed on the module path, or a kwik version other than the pinned
   * one changed them. Shared by the workarounds that reflect into kwik.
   */
  static IllegalStateException unusable(String what, Exception cause) {
    return new IllegalStateException("brpc-java cannot " + what + " (" + cause + "). On the"
        + " module path, open kwik's packages to it: --add-opens tech.kwik.core/<package>="
        + "ALL-UNNAMED for tech.kwik.core.stream, .impl, .frame, .receive and .server.impl;"
        + " with another kwik"
        + " version than the one brpc-java pins, use the pinned one.", cause);
  }

  /** Throws if the fix cannot be applied in this JVM. */
  static void requireAvailable() {
    if (UNAVAILABLE != null) {
      throw UNAVAILABLE;
    }
  }

  /** Patches the output of {@code stream}, a stream we write to (not a peer's control stream). */
  public static void apply(QuicStream stream) {
    requireAvailable();
    OutputStream out = stream.getOutputStream();
    if (!SEND_BUFFER.getDeclaringClass().isInstance(out)) {
      return;
    }
    try {
      SendBuffer old = (SendBuffer) SEND_BUFFER.get(out);
      if (old instanceof CountingSendBuffer || !old.isEmpty()) {
        return;
      }
      AtomicInteger counter = (AtomicInteger) COUNTER.get(out);
      SEND_BUFFER.set(out, new CountingSendBuffer(old.getMaxSize(), counter));
    } catch (IllegalAccessException e) {
      throw new IllegalStateException("cannot patch a kwik stream", e);
    }
  }

  /** A patched stream's send buffer, as its writer sees it. */
  interface Buffer {
    /**
     * Bytes a write may add without blocking. Exact for the stream's one writer: only kwik's
     * sender changes it meanwhile, and only upwards.
     */
    int free();

    /**
     * True if at least half the buffer is free now; otherwise {@code listener} runs once on
     * {@link KwikThreads#io()} when it is, or when a reset clears the buffer. (Waking the
     * writer for less would cost a thread hand-off per packet.)
     */
    boolean requestWritable(Runnable listener);
  }

  /** The send buffer {@link #apply} put into {@code stream}, or null if it put none. */
  static Buffer buffer(QuicStream stream) {
    OutputStream out = stream.getOutputStream();
    if (UNAVAILABLE != null || !SEND_BUFFER.getDeclaringClass().isInstance(out)) {
      return null;
    }
    try {
      Object b = SEND_BUFFER.get(out);
      return b instanceof CountingSendBuffer ? (CountingSendBuffer) b : null;
    } catch (IllegalAccessException e) {
      return null;
    }
  }

  /**
   * A send buffer whose {@link #hasData} waits for the writer's count of its request, and
   * whose {@link #getStreamFrame} (sender thread) and {@link #clear} (a reset, any thread)
   * exclude each other.
   */
  private static final class CountingSendBuffer extends SendBuffer implements Buffer {
    private final AtomicInteger requestsQueued;
    private final AtomicBoolean armed = new AtomicBoolean();
    private volatile Runnable writable;

    CountingSendBuffer(int maxSize, AtomicInteger requestsQueued) {
      super(maxSize);
      this.requestsQueued = requestsQueued;
    }

    @Override
    public int free() {
      return getMaxSize() - getAvailableBytes();
    }

    @Override
    public boolean requestWritable(Runnable listener) {
      writable = listener;
      armed.set(true);
      // Checked after arming: room freed in between is either seen here or fires the listener.
      return roomy() && armed.compareAndSet(true, false);
    }

    private boolean roomy() {
      return free() >= getMaxSize() / 2;
    }

    /** Calls the writer back if it asked and there is room (or {@code cleared}). */
    private void maybeNotify(boolean cleared) {
      if (armed.get() && (cleared || roomy()) && armed.compareAndSet(true, false)) {
        // Not here: this is kwik's sender thread (or a reset's), inside this buffer's monitor.
        KwikThreads.io().execute(writable);
      }
    }

    @Override
    public boolean hasData() {
      if (requestsQueued.get() < 0) {
        awaitCount();
      }
      return super.hasData();
    }

    @Override
    public synchronized StreamFrame getStreamFrame(Version quicVersion, int streamId,
        long currentOffset, int maxBytesToSend) {
      StreamFrame frame =
          super.getStreamFrame(quicVersion, streamId, currentOffset, maxBytesToSend);
      maybeNotify(false);
      return frame;
    }

    @Override
    public synchronized void clear() {
      super.clear();
      maybeNotify(true);
    }

    private void awaitCount() {
      long start = System.nanoTime();
      int spins = 0;
      while (requestsQueued.get() < 0) {
        long waited = System.nanoTime() - start;
        if (++spins < 100) {
          Thread.onSpinWait();
        } else if (waited < YIELD_NANOS) {
          Thread.yield(); // the writer was preempted between its two steps
        } else if (waited < MAX_WAIT_NANOS) {
          LockSupport.parkNanos(PARK_NANOS); // a long preemption or a GC pause
        } else {
          log.log(Level.WARNING, "kwik's send-request counter stayed negative for "
              + TimeUnit.NANOSECONDS.toSeconds(MAX_WAIT_NANOS) + " s; this stream may stall");
          return;
        }
      }
    }
  }
}
