package dev.brpc.quic.internal;

import java.util.concurrent.Executors;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The transport's process-wide threads, shared by every engine. Stream I/O does not run here:
 * readers and writers are driven by the engine's readable/writable events on its own threads
 * ({@link StreamEvents}). {@link #io()} is a cached pool of daemon threads named
 * {@code brpc-quic-io-N} for the work that may block and must stay off an engine's thread
 * (connection termination, whose listeners may close a server socket); it shrinks after
 * {@value #IO_KEEP_ALIVE_SECONDS} idle seconds. {@link #timer()} is one daemon thread for
 * timeouts and keepalive.
 *
 * <p>Thread-safe.
 */
final class SharedExecutors {
  static final int IO_KEEP_ALIVE_SECONDS = 10;

  private SharedExecutors() {}

  private static final class Holder {
    static final ExecutorService IO = new ThreadPoolExecutor(0, Integer.MAX_VALUE,
        IO_KEEP_ALIVE_SECONDS, TimeUnit.SECONDS, new SynchronousQueue<>(), daemon("brpc-quic-io-"));
    static final ScheduledExecutorService TIMER = newTimer();

    private static ScheduledExecutorService newTimer() {
      ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1, daemon("brpc-quic-timer-"));
      timer.setRemoveOnCancelPolicy(true);
      return Executors.unconfigurableScheduledExecutorService(timer);
    }
  }

  /** The pool for work that may block: never an engine thread's. */
  static ExecutorService io() {
    return Holder.IO;
  }

  /** One thread for timers; tasks must be short and never block. */
  static ScheduledExecutorService timer() {
    return Holder.TIMER;
  }

  private static ThreadFactory daemon(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }
}
