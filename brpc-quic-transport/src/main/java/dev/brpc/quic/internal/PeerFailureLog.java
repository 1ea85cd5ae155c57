package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The server operator's log of connections it refused or that failed before they were
 * admitted (issue 20 item 4): one WARNING line with the peer's address and the reason, the
 * cause's stack trace only at FINE. A flood does not flood the log: each peer host is logged at
 * most once per {@link #WINDOW_NANOS}, and the whole log at most {@link #LINES_PER_WINDOW}
 * lines per window; what was left out is counted, and the next line logged says how many.
 *
 * <p>Thread-safe; never blocks beyond a short lock (it runs on engine and timer threads).
 */
final class PeerFailureLog {
  static final long WINDOW_NANOS = TimeUnit.MINUTES.toNanos(1);
  static final int LINES_PER_WINDOW = 10;
  /** Peer hosts remembered at most; beyond, the oldest entries are forgotten. */
  static final int MAX_PEERS = 4096;

  private final Logger log;
  private final LongSupplier clock;
  private final Object lock = new Object();
  /** Peer host to when it was last logged. */
  @GuardedBy("lock") private final Map<Object, Long> lastLogged = new HashMap<>();
  @GuardedBy("lock") private long windowStart;
  @GuardedBy("lock") private int linesInWindow;
  @GuardedBy("lock") private long suppressed;

  PeerFailureLog(Logger log) {
    this(log, System::nanoTime);
  }

  PeerFailureLog(Logger log, LongSupplier clock) {
    this.log = log;
    this.clock = clock;
    this.windowStart = clock.getAsLong();
  }

  /**
   * Reports that a connection from {@code peer} failed or was refused, for {@code reason} (one
   * line, in words). Returns whether a WARNING line was logged.
   */
  boolean failed(SocketAddress peer, String reason, Throwable cause) {
    String line = peer + ": " + reason;
    if (cause != null && log.isLoggable(Level.FINE)) {
      log.log(Level.FINE, line, cause);
    }
    long now = clock.getAsLong();
    long left;
    synchronized (lock) {
      if (now - windowStart >= WINDOW_NANOS) {
        windowStart = now;
        linesInWindow = 0;
      }
      Object host = host(peer);
      Long last = lastLogged.get(host);
      if ((last != null && now - last < WINDOW_NANOS) || linesInWindow >= LINES_PER_WINDOW) {
        suppressed++;
        return false;
      }
      if (lastLogged.size() >= MAX_PEERS) {
        forgetOld(now);
      }
      lastLogged.put(host, now);
      linesInWindow++;
      left = suppressed;
      suppressed = 0;
    }
    log.log(Level.WARNING, left == 0 ? line : line + " (" + left + " more such failures were"
        + " not logged before this one: at most one line per peer host, and "
        + LINES_PER_WINDOW + " lines, a minute)");
    return true;
  }

  /** For tests: how many peer hosts are remembered. */
  int peersRemembered() {
    synchronized (lock) {
      return lastLogged.size();
    }
  }

  @GuardedBy("lock")
  private void forgetOld(long now) {
    for (Iterator<Long> it = lastLogged.values().iterator(); it.hasNext(); ) {
      if (now - it.next() >= WINDOW_NANOS) {
        it.remove();
      }
    }
    if (lastLogged.size() >= MAX_PEERS) {
      lastLogged.clear(); // a flood from many hosts: the line cap still holds
    }
  }

  /** One entry per host, not per port: a client that retries comes from a new port each time. */
  private static Object host(SocketAddress peer) {
    return peer instanceof InetSocketAddress a && a.getAddress() != null ? a.getAddress() : peer;
  }
}
