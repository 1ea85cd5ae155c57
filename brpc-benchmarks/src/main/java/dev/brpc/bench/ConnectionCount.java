package dev.brpc.bench;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * How many clients a benchmark server has connected, fed by the stack's own connection events,
 * so the footprint rows can wait for "all N connected" without polling.
 *
 * <p>Thread-safe.
 */
final class ConnectionCount {
  private final Object lock = new Object();
  @GuardedBy("lock") private int connected;

  void connected() {
    synchronized (lock) {
      connected++;
      lock.notifyAll();
    }
  }

  void disconnected() {
    synchronized (lock) {
      connected--;
    }
  }

  void awaitAtLeast(int count, Duration timeout) throws InterruptedException, TimeoutException {
    long deadline = System.nanoTime() + timeout.toNanos();
    synchronized (lock) {
      while (connected < count) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new TimeoutException(connected + " of " + count + " clients connected after "
              + timeout);
        }
        TimeUnit.NANOSECONDS.timedWait(lock, left);
      }
    }
  }
}
