package dev.brpc.quic.internal;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The live connections, for diagnosing one that stopped moving: tests print {@link
 * #describeAll} when they fail ({@code dev.brpc.fixtures.ThreadDumpOnFailure} calls it by name),
 * with each engine's own view of its connection ({@code EngineConnection.describe}).
 *
 * <p>Thread-safe. Never on a hot path but for {@link #register} and {@link #unregister}.
 */
public final class Diagnostics {
  /** Connections from start to termination. */
  private static final Set<Connection> LIVE = ConcurrentHashMap.newKeySet();

  private Diagnostics() {}

  static void register(Connection c) {
    LIVE.add(c);
  }

  static void unregister(Connection c) {
    LIVE.remove(c);
  }

  /** How many connections are registered (tests check that an ended one is gone). */
  static int liveCount() {
    return LIVE.size();
  }

  /** One paragraph per live connection. */
  public static String describeAll() {
    StringBuilder b = new StringBuilder();
    for (Connection c : LIVE) {
      b.append(c.id).append(c.dialer ? " (dialer) " : " (acceptor) ")
          .append(c.engine.describe()).append('\n');
    }
    return b.toString();
  }
}
