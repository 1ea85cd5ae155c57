package dev.brpc.testing;

import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * Finds threads that outlive what started them: take a {@link #snapshot} before the work,
 * call {@link #assertAllEnd} after closing it. Threads of the pools shared by every connection
 * ({@link #SHARED_POOLS}), which keep idle workers for a while by design, are not counted.
 *
 * <p>Thread-safe.
 */
public final class ThreadLeaks {
  /**
   * Name prefixes of pools shared by every connection: brpc's io pool and reconnect timer
   * keep idle workers 10 s, grpc's executor 60 s. They are not per-connection threads.
   */
  public static final List<String> SHARED_POOLS = List.of("brpc-quic-io-", "brpc-quic-timer-",
      "grpc-default-executor-", "grpc-timer-");

  private final Set<Thread> baseline;
  private final List<String> ignored;

  private ThreadLeaks(Set<Thread> baseline, List<String> ignored) {
    this.baseline = baseline;
    this.ignored = ignored;
  }

  /** Remembers the threads alive now; names starting with {@code ignoredPrefixes} never count. */
  public static ThreadLeaks snapshot(String... ignoredPrefixes) {
    List<String> ignored = new java.util.ArrayList<>(SHARED_POOLS);
    ignored.addAll(List.of(ignoredPrefixes));
    return new ThreadLeaks(Set.copyOf(Thread.getAllStackTraces().keySet()), ignored);
  }

  /** Threads started since the snapshot that are alive and not in a shared pool. */
  public List<Thread> started() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> !baseline.contains(t) && t.isAlive())
        .filter(t -> ignored.stream().noneMatch(p -> t.getName().startsWith(p)))
        .collect(Collectors.toList());
  }

  /**
   * Waits up to {@code within} for every thread started since the snapshot to end; returns
   * the names of those still alive.
   */
  public List<String> awaitEnd(Duration within) throws InterruptedException {
    long deadline = System.nanoTime() + within.toNanos();
    List<Thread> started = started();
    for (Thread t : started) {
      t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
    }
    return started.stream().filter(Thread::isAlive).map(Thread::getName)
        .collect(Collectors.toList());
  }

  /**
   * Waits up to {@code within} for every thread started since the snapshot to end; throws an
   * AssertionError naming those that did not.
   */
  public void assertAllEnd(Duration within) throws InterruptedException {
    List<String> alive = awaitEnd(within);
    if (!alive.isEmpty()) {
      throw new AssertionError(alive.size() + " thread(s) outlived their work: " + alive);
    }
  }
}
