package dev.brpc.quic.internal.kwik;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * A deadline for one blocking kwik call made by the thread that creates it (kwik's {@code
 * connect()}). When it passes before {@link #settle}, {@code expire}
 * runs on the timer thread and says whether the call must be ended; if so, the blocked thread
 * is interrupted (kwik may miss other wakeups of a blocked reader). The interrupt is sent
 * only while the call is outstanding, and {@link #settle} clears it, so it never reaches the
 * pooled thread's next task.
 *
 * <p>Thread-safe; {@link #settle} is called by the thread that created the deadline.
 */
final class BlockingDeadline implements Runnable {
  private final Thread owner = Thread.currentThread();
  private final BooleanSupplier expire;
  private final ScheduledFuture<?> timer;
  @GuardedBy("this") private boolean settled;
  @GuardedBy("this") private boolean expired;

  /**
   * @param expire runs once the deadline passed (unless settled first); returns true to end the
   *     blocked call, false to let it go on
   */
  BlockingDeadline(long timeoutNanos, BooleanSupplier expire) {
    this.expire = expire;
    this.timer = KwikThreads.timer().schedule(this, timeoutNanos, TimeUnit.NANOSECONDS);
  }

  @Override
  public void run() {
    synchronized (this) {
      if (settled) {
        return;
      }
      // Decided under the lock, so settle() cannot slip in between.
      if (!expire.getAsBoolean()) {
        return;
      }
      expired = true;
      owner.interrupt();
    }
  }

  /** Ends the call now, as if the deadline had passed (if {@code expire} agrees). Any thread. */
  void expireNow() {
    if (timer.cancel(false)) {
      run();
    }
  }

  /** The blocking call returned or threw; false if this deadline ended it. */
  boolean settle() {
    timer.cancel(false);
    synchronized (this) {
      settled = true;
      if (expired) {
        Thread.interrupted();
      }
      return !expired;
    }
  }
}
