package dev.brpc.bench;

import java.io.IOException;
import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What a benchmark JVM reports about itself: process CPU time and JIT compilation time (for
 * the CPU columns and for warm-up settling), and threads, heap and resident memory (for the
 * footprint rows).
 *
 * <p>Thread-safe.
 */
final class JvmStats {
  private JvmStats() {}

  /** CPU time of the whole process (all threads, user and system). */
  static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean)
        ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  /** Time the JIT compilers have spent so far; it stops growing once the JIT has settled. */
  static long compileMillis() {
    CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
    if (jit == null || !jit.isCompilationTimeMonitoringSupported()) {
      throw new IllegalStateException("this JVM does not report JIT compilation time; the"
          + " benchmark needs it to tell when warm-up is over");
    }
    return jit.getTotalCompilationTime();
  }

  /** {@code cpuNanos}, {@code compileMillis} and {@code threads}, cheap enough to ask often. */
  static Fields snapshot() {
    return new Fields("ok")
        .put("cpuNanos", cpuNanos())
        .put("compileMillis", compileMillis())
        .put("threads", ManagementFactory.getThreadMXBean().getThreadCount());
  }

  /**
   * {@code threads}, {@code heapBytes} (used heap after two full collections) and
   * {@code rssBytes} (resident set size from /proc, -1 where there is none).
   */
  static Fields footprint() {
    ManagementFactory.getMemoryMXBean().gc();
    ManagementFactory.getMemoryMXBean().gc();
    return new Fields("ok")
        .put("threads", ManagementFactory.getThreadMXBean().getThreadCount())
        .put("heapBytes", ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed())
        .put("rssBytes", rssBytes());
  }

  private static long rssBytes() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmRSS:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException | RuntimeException e) {
      // Not Linux: the row says n/a.
    }
    return -1;
  }
}
