package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Status;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Notices a connection that went silent under calls in flight, whatever the engine, and ends
 * it well before the QUIC idle timeout would, so that callers fail at once with UNAVAILABLE
 * and a {@code BrpcClient} reconnects (RELIABILITY.md, "the silent connection").
 *
 * <p>Progress is anything read from the peer: call bytes, a FIN, a reset, a control frame
 * ({@link #progress}). While calls are open ({@link Actions#callsOpen}) and nothing has
 * arrived for {@code stallNanos}, the watchdog sends a PING; a live peer answers it at once,
 * however quiet its calls are (a long poll, say). If nothing at all arrives within {@code
 * stallNanos} more, the connection is closed with UNAVAILABLE, unless our own consumer is what
 * holds the peer back ({@link Actions#heldBack}). A connection without calls is left to
 * keepalive and the idle timeout. So a stall costs the calls on it at most twice {@code
 * stallNanos}, and a quiet connection with open calls one PING round trip per {@code
 * stallNanos}.
 *
 * <p>Thread-safe. {@link #progress} runs on engine threads and only writes a volatile; the
 * checks run on {@link SharedExecutors#timer()}.
 */
final class StallWatchdog {
  private static final Logger log = Logger.getLogger(StallWatchdog.class.getName());

  /** What the watchdog asks of, and does to, its connection. */
  interface Actions {
    /** Whether calls are open: only then is the peer's silence suspicious. */
    boolean callsOpen();

    /**
     * Whether a consumer of ours is behind, holding a stream's bytes unread in the engine.
     * Those bytes count against the connection's receive window; once they fill it, the peer
     * cannot send even a PING answer, so its silence proves nothing. The watchdog then keeps
     * probing, which tells the peer (whose own watchdog waits for us) that we are alive, but
     * does not close.
     */
    boolean heldBack();

    void sendProbe();

    void close(Status status);
  }

  private final String name;
  private final long stallNanos;
  private final Actions actions;
  private volatile long lastProgressNanos = System.nanoTime();
  private final Object lock = new Object();
  @GuardedBy("lock") private long probeSentNanos;
  @GuardedBy("lock") private boolean probing;
  @GuardedBy("lock") private ScheduledFuture<?> task;
  @GuardedBy("lock") private boolean stopped;

  StallWatchdog(String name, long stallNanos, Actions actions) {
    this.name = name;
    this.stallNanos = stallNanos;
    this.actions = actions;
  }

  /** Checks four times per {@code stallNanos}, so a stall is acted on within 1.25 of it. */
  void start() {
    long period = Math.max(1, stallNanos / 4);
    synchronized (lock) {
      if (stopped || task != null) {
        return;
      }
      task = SharedExecutors.timer().scheduleWithFixedDelay(this::check, period, period,
          TimeUnit.NANOSECONDS);
    }
  }

  void stop() {
    ScheduledFuture<?> t;
    synchronized (lock) {
      stopped = true;
      t = task;
      task = null;
    }
    if (t != null) {
      t.cancel(false);
    }
  }

  /** Something arrived from the peer. Any thread; cheap. */
  void progress() {
    lastProgressNanos = System.nanoTime();
  }

  private void check() {
    long now = System.nanoTime();
    long silent = now - lastProgressNanos;
    boolean probe = false;
    boolean close = false;
    synchronized (lock) {
      if (stopped) {
        return;
      }
      if (probing && lastProgressNanos - probeSentNanos >= 0) {
        probing = false; // answered (or something else came): alive
      }
      if (probing) {
        if (now - probeSentNanos >= stallNanos) {
          if (actions.heldBack()) {
            probeSentNanos = now; // our own consumer is behind: keep the peer informed
            probe = true;
          } else {
            close = true;
          }
        }
      } else if (silent >= stallNanos && actions.callsOpen()) {
        probing = true;
        probeSentNanos = now;
        probe = true;
      }
    }
    if (probe) {
      log.log(Level.FINE, "{0}: nothing from the peer for {1} ms with calls open; probing",
          new Object[] {name, TimeUnit.NANOSECONDS.toMillis(silent)});
      actions.sendProbe();
    } else if (close) {
      stop();
      Status s = Status.UNAVAILABLE.withDescription("connection stalled: nothing from the peer"
          + " for " + TimeUnit.NANOSECONDS.toMillis(silent) + " ms with calls open, and no"
          + " answer to a PING");
      log.log(Level.INFO, "{0}: {1}", new Object[] {name, s.getDescription()});
      actions.close(s);
    }
  }
}
