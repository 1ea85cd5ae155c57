package dev.brpc.bench;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The measured loops, written once against {@link Stack.Caller} and run in the JVM that drives
 * the calls (the client JVM, or the brpc server JVM for callbacks). Each runs until its
 * {@link Budget} is spent and answers {@code ops}, {@code nanos} (the wall time of the loop) and
 * what it measured. Closed loops: a new call starts when one completes.
 *
 * <p>Each method runs on the calling thread; {@link #throughput} also on threads it starts and
 * joins before returning.
 */
final class Workloads {
  private Workloads() {}

  /** Stop after {@code nanos} of wall time or {@code ops} operations, whichever comes first. */
  record Budget(long nanos, long ops) {
    static Budget of(Fields command) {
      long nanos = (long) (command.getDouble("seconds") * 1e9);
      long ops = command.has("ops") ? command.getLong("ops") : 0;
      return new Budget(nanos > 0 ? nanos : Long.MAX_VALUE, ops > 0 ? ops : Long.MAX_VALUE);
    }

    boolean spent(long startNanos, long done) {
      return done >= ops || System.nanoTime() - startNanos >= nanos;
    }
  }

  /** Unary calls one at a time; percentiles of their latency. */
  static Fields latency(Stack.Caller caller, Budget budget) throws Exception {
    LatencySamples samples = new LatencySamples();
    long start = System.nanoTime();
    long now = start;
    do {
      caller.unary();
      long end = System.nanoTime();
      samples.add(end - now);
      now = end;
    } while (!budget.spent(start, samples.count()));
    return samples.putPercentiles(result(samples.count(), now - start));
  }

  /** Unary calls from {@code inFlight} threads at once, over the one connection. */
  static Fields throughput(Stack.Caller caller, int inFlight, Budget budget) throws Exception {
    AtomicLong ops = new AtomicLong();
    AtomicReference<Exception> failure = new AtomicReference<>();
    CountDownLatch go = new CountDownLatch(1);
    Thread[] workers = new Thread[inFlight];
    long[] start = new long[1];
    for (int i = 0; i < inFlight; i++) {
      workers[i] = new Thread(() -> {
        try {
          go.await();
          while (failure.get() == null && !budget.spent(start[0], ops.get())) {
            caller.unary();
            ops.incrementAndGet();
          }
        } catch (Exception e) {
          failure.compareAndSet(null, e);
        }
      }, "bench-caller-" + i);
      workers[i].start();
    }
    start[0] = System.nanoTime(); // published to the workers by the latch
    go.countDown();
    for (Thread t : workers) {
      t.join();
    }
    long nanos = System.nanoTime() - start[0];
    if (failure.get() != null) {
      throw failure.get();
    }
    return result(ops.get(), nanos);
  }

  /** Server-streaming calls one at a time, each {@code count} messages of {@code size} bytes. */
  static Fields streaming(Stack.Caller caller, int count, int size, Budget budget)
      throws Exception {
    return bulk(caller, count, size, budget, false);
  }

  /** As {@link #streaming}, the bytes sent on a side channel of each call instead. */
  static Fields sideChannel(Stack.Caller caller, int count, int size, Budget budget)
      throws Exception {
    return bulk(caller, count, size, budget, true);
  }

  private static Fields bulk(Stack.Caller caller, int count, int size, Budget budget,
      boolean sideChannel) throws Exception {
    long bytes = 0;
    long calls = 0;
    long start = System.nanoTime();
    do {
      long got = sideChannel ? caller.sideChannel(count, size) : caller.stream(count, size);
      if (got != (long) count * size) {
        throw new IllegalStateException("stream delivered " + got + " of " + (long) count * size
            + " bytes");
      }
      bytes += got;
      calls++;
    } while (!budget.spent(start, calls));
    return result(calls, System.nanoTime() - start).put("bytes", bytes);
  }

  /** Fresh connections one at a time: dial, one unary call (timed), then close (not timed). */
  static Fields connectionSetup(Stack stack, int port, Budget budget) throws Exception {
    LatencySamples samples = new LatencySamples();
    long start = System.nanoTime();
    do {
      long t0 = System.nanoTime();
      try (Stack.Caller caller = stack.dial(port)) {
        caller.unary();
        samples.add(System.nanoTime() - t0);
      }
    } while (!budget.spent(start, samples.count()));
    return samples.putPercentiles(result(samples.count(), System.nanoTime() - start));
  }

  private static Fields result(long ops, long nanos) {
    return new Fields("ok").put("ops", ops).put("nanos", nanos);
  }
}
