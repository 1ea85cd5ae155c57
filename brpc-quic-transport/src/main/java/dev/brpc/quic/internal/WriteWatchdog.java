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
 * <p>Writers call {@link #begin} before a blocking write and {@link #end} after. While any
 * write is in progress a timer task runs every {@value #PERIOD_MILLIS} ms and kicks each
 * writer that has been blocked for at least one period. {@code WriteWatchdogTest} reproduces
 * the stall with the watchdog disabled.
 *
 * <p>Thread-safe.
 */
final class WriteWatchdog {
  private static final Logger log = Logger.getLogger(WriteWatchdog.class.getName());
  static final long PERIOD_MILLIS = 10;
  private static final byte[] EMPTY = new byte[0];

  /** For the reproduction test only: when false, no writer is ever kicked. */
  static volatile boolean enabled = true;

  private static final Map<OutputStream, Long> writing = new ConcurrentHashMap<>();
  private static final Object lock = new Object();
  private static ScheduledFuture<?> task; // guarded by lock

  private WriteWatchdog() {}

  static void begin(OutputStream out) {
    writing.put(out, System.nanoTime());
    synchronized (lock) {
      if (task == null) {
        task = SharedExecutors.timer().scheduleWithFixedDelay(
            WriteWatchdog::scan, PERIOD_MILLIS, PERIOD_MILLIS, TimeUnit.MILLISECONDS);
      }
    }
  }

  static void end(OutputStream out) {
    writing.remove(out);
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
    for (Map.Entry<OutputStream, Long> e : writing.entrySet()) {
      if (now - e.getValue() >= threshold) {
        try {
          // Does not block: zero bytes always fit. It only queues a send request.
          e.getKey().write(EMPTY);
        } catch (IOException | RuntimeException ex) {
          // The stream was closed or reset meanwhile; the blocked writer gets its own error.
          log.log(Level.FINEST, "watchdog kick failed", ex);
        }
      }
    }
  }
}
