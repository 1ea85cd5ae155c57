package dev.brpc.testing;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.lang.management.MemoryUsage;

/**
 * The live heap, for tests that bound memory growth.
 *
 * <p>Thread-safe.
 */
public final class Heap {
  private Heap() {}

  /**
   * Bytes live after a full collection: what the collector itself found in use when it ended
   * (each heap pool's usage after its last collection). Not the used heap read afterwards: on
   * a busy machine the reading thread may run only after others have allocated tens of
   * megabytes of garbage (a load-loop run saw 28 MB that way).
   */
  public static long live() {
    System.gc();
    long live = 0;
    boolean known = false;
    for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
      MemoryUsage afterGc = pool.getType() == MemoryType.HEAP ? pool.getCollectionUsage() : null;
      if (afterGc != null) {
        live += afterGc.getUsed();
        known = true;
      }
    }
    if (known) {
      return live;
    }
    Runtime r = Runtime.getRuntime(); // a JVM that does not report it
    return r.totalMemory() - r.freeMemory();
  }
}
