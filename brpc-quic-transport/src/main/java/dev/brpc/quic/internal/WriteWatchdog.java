package dev.brpc.quic.internal;

import java.io.IOException;
import java.io.OutputStream;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Guards against kwik 0.10.9's stalled-writer race (DESIGN.md section 7): a check-then-act race
 * on {@code StreamOutputStreamImpl.sendRequestsQueued} can leave data in a stream's send
 * buffer with no send request queued; a writer then blocked on the full buffer waits forever.
 * A zero-length write from another thread queues a send request and wakes it.
 *
 * <p>The same race also strikes a write that returns: its data stays in kwik's buffer unsent
 * (seen as a call whose request body never arrives). So writers call {@link #begin} before a
 * write and {@link #end} after, and while any stream is registered a timer task runs every
 * {@value #PERIOD_MILLIS} ms: it kicks each writer blocked for at least one period, and kicks
 * each stream {@value #KICKS_AFTER_WRITE} more times, one period apart, after its last write.
 *
 * <p>Thread-safe.
 */
final class WriteWatchdog {
  private static final Logger log = Logger.getLogger(WriteWatchdog.class.getName());
  static final long PERIOD_MILLIS = 10;
  private static final byte[] EMPTY = new byte[0];

  /** For the reproduction test only: when false, no writer is ever kicked. */
  static volatile boolean enabled = true;

  static final int KICKS_AFTER_WRITE = 2;

  /** When the current write began, or the last kick after a finished write. */
  private static final class Entry {
    volatile long since = System.nanoTime();
    volatile boolean inWrite = true;
    volatile int kicksLeft = KICKS_AFTER_WRITE;
  }

  private static final Map<OutputStream, Entry> writing = new ConcurrentHashMap<>();
  private static final Object lock = new Object();
  private static ScheduledFuture<?> task; // guarded by lock

  private WriteWatchdog() {}

  static void begin(OutputStream out) {
    writing.put(out, new Entry());
    synchronized (lock) {
      if (task == null) {
        task = SharedExecutors.timer().scheduleWithFixedDelay(
            WriteWatchdog::scan, PERIOD_MILLIS, PERIOD_MILLIS, TimeUnit.MILLISECONDS);
      }
    }
  }

  static void end(OutputStream out) {
    Entry e = writing.get(out);
    if (e != null) {
      e.since = System.nanoTime();
      e.inWrite = false;
    }
  }

  private static void scan() {
    if (writing.isEmpty()) {
      synchronized (lock) {
        if (writing.isEmpty() && task != null) {
          task.cancel(false);
          task = null;
        }
      }
      return;
    }
    if (!enabled) {
      return;
    }
    long now = System.nanoTime();
    long threshold = TimeUnit.MILLISECONDS.toNanos(PERIOD_MILLIS);
    for (Map.Entry<OutputStream, Entry> e : writing.entrySet()) {
      Entry entry = e.getValue();
      if (now - entry.since < threshold) {
        continue;
      }
      if (!entry.inWrite) {
        entry.since = now;
        if (--entry.kicksLeft < 0) {
          writing.remove(e.getKey(), entry);
          continue;
        }
      }
      try {
        // Does not block: zero bytes always fit. It only queues a send request.
        e.getKey().write(EMPTY);
      } catch (IOException | RuntimeException ex) {
        // Closed or reset meanwhile: nothing left to push; a blocked writer gets its own error.
        writing.remove(e.getKey(), entry);
        log.log(Level.FINEST, "watchdog kick failed", ex);
      }
    }
  }
}
