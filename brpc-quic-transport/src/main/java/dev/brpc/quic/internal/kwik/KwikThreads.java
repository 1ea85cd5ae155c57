package dev.brpc.quic.internal.kwik;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The kwik engine's own threads, beside kwik's. kwik's API blocks in three places, which run
 * on {@link #io()} (a cached pool of daemon threads named {@code brpc-kwik-io-N} that shrinks
 * after {@value #IO_KEEP_ALIVE_SECONDS} idle seconds): {@code connect()}, {@code
 * createStream} while the peer's stream credit is used up, and {@code ServerConnector.close()}.
 * {@link #io()} also runs the "writable again" callbacks, which must not run on kwik's sender
 * thread. {@link #timer()} is one daemon thread for deadlines.
 *
 * <p>Thread-safe.
 */
final class KwikThreads {
  static final int IO_KEEP_ALIVE_SECONDS = 10;

  private KwikThreads() {}

  private static final class Holder {
    static final ExecutorService IO = new ThreadPoolExecutor(0, Integer.MAX_VALUE,
        IO_KEEP_ALIVE_SECONDS, TimeUnit.SECONDS, new SynchronousQueue<>(),
        daemon("brpc-kwik-io-"));
    static final ScheduledExecutorService TIMER = newTimer();

    private static ScheduledExecutorService newTimer() {
      ScheduledThreadPoolExecutor timer =
          new ScheduledThreadPoolExecutor(1, daemon("brpc-kwik-timer-"));
      timer.setRemoveOnCancelPolicy(true);
      return Executors.unconfigurableScheduledExecutorService(timer);
    }
  }

  static ExecutorService io() {
    return Holder.IO;
  }

  /** Tasks must be short and never block. */
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
