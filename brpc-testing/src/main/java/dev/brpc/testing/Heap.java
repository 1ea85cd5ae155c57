package dev.brpc.testing;

/**
 * The live heap, for tests that bound memory growth.
 *
 * <p>Thread-safe.
 */
public final class Heap {
  private Heap() {}

  /** Bytes in use after a full collection was requested. */
  public static long live() {
    System.gc();
    Runtime r = Runtime.getRuntime();
    return r.totalMemory() - r.freeMemory();
  }
}
