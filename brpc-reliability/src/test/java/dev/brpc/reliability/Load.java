package dev.brpc.reliability;

import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

/**
 * Runs {@code n} asynchronous calls with at most {@code inFlight} outstanding, and collects
 * their failures.
 *
 * <p>Thread-safe; {@link #run} blocks its caller until every call finished.
 */
final class Load {
  private Load() {}

  /**
   * Starts call {@code i} for i in [0, n), keeping {@code inFlight} outstanding; returns the
   * failures once all have finished, or throws if that takes longer than {@code timeoutSeconds}.
   */
  static List<Throwable> run(int n, int inFlight, long timeoutSeconds,
      IntFunction<ListenableFuture<?>> call) throws InterruptedException {
    List<Throwable> failures = new CopyOnWriteArrayList<>();
    Semaphore permits = new Semaphore(inFlight);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
    for (int i = 0; i < n; i++) {
      if (!permits.tryAcquire(deadline - System.nanoTime(), TimeUnit.NANOSECONDS)) {
        throw new AssertionError("calls did not finish in " + timeoutSeconds + " s; " + i
            + " started, failures so far: " + failures.size());
      }
      Futures.addCallback(call.apply(i), new FutureCallback<Object>() {
        @Override
        public void onSuccess(Object result) {
          permits.release();
        }

        @Override
        public void onFailure(Throwable t) {
          failures.add(t);
          permits.release();
        }
      }, MoreExecutors.directExecutor());
    }
    if (!permits.tryAcquire(inFlight, deadline - System.nanoTime(), TimeUnit.NANOSECONDS)) {
      throw new AssertionError("calls did not finish in " + timeoutSeconds + " s");
    }
    return failures;
  }

  /** A failure list as a message: how many, and the first few. */
  static String describe(List<Throwable> failures) {
    return failures.size() + " failures" + (failures.isEmpty() ? ""
        : ", first: " + failures.subList(0, Math.min(3, failures.size())));
  }
}
