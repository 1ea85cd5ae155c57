package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Status;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Notices a connection whose peer went silent, whatever the engine, and ends it well before
 * the QUIC idle timeout would, so that callers fail at once with UNAVAILABLE, the server's
 * registry lets a vanished client go, and a {@code BrpcClient} reconnects (RELIABILITY.md, "the
 * silent connection"; README, "A dead peer").
 *
 * <p>Progress is anything read from the peer: call bytes, a FIN, a reset, a control frame
 * ({@link #progress}). Once nothing has arrived for {@code stallNanos} while calls are open
 * ({@link Actions#callsOpen}), or for {@code idleProbeNanos} while none are, the watchdog
 * sends a PING; a live peer answers it at once, however quiet its calls are (a long poll,
 * say). If nothing at all arrives within the probe timeout ({@code stallNanos}, or {@code
 * idleProbeNanos} when the call watchdog is off), the connection is closed with UNAVAILABLE,
 * unless our own consumer is what holds the peer back ({@link Actions#heldBack}). So a peer
 * that vanished (a process killed, a network gone) costs the calls on it at most twice {@code
 * stallNanos}, is noticed on an idle connection within {@code idleProbeNanos + stallNanos},
 * and a live quiet connection costs one PING round trip per period, whichever side sends it
 * (the other side's silence clock restarts with the PING).
 *
 * <p>Thread-safe. {@link #progress} runs on engine threads and only writes a volatile; the
 * checks run on {@link SharedExecutors#timer()}.
 */
final class StallWatchdog {
  private static final Logger log = Logger.getLogger(StallWatchdog.class.getName());

  /** What the watchdog asks of, and does to, its connection. */
  interface Actions {
    /**
     * Whether both sides' SETTINGS are through: before, a PING cannot be sent or answered, and
     * the handshake timeout watches the connection.
     */
    boolean ready();

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
  /** Silence with calls open before a probe; Long.MAX_VALUE: not probed for calls. */
  private final long stallNanos;
  /** Silence without calls before a probe; Long.MAX_VALUE: idle connections not probed. */
  private final long idleProbeNanos;
  /** How long a probe waits for anything from the peer before the connection is closed. */
  private final long probeTimeoutNanos;
  private final Actions actions;
  private volatile long lastProgressNanos = System.nanoTime();
  private final Object lock = new Object();
  @GuardedBy("lock") private long probeSentNanos;
  @GuardedBy("lock") private boolean probing;
  @GuardedBy("lock") private ScheduledFuture<?> task;
  @GuardedBy("lock") private boolean stopped;

  /** At least one of {@code stallNanos} and {@code idleProbeNanos} is finite. */
  StallWatchdog(String name, long stallNanos, long idleProbeNanos, Actions actions) {
    this.name = name;
    this.stallNanos = stallNanos;
    this.idleProbeNanos = idleProbeNanos;
    this.probeTimeoutNanos = stallNanos != Long.MAX_VALUE ? stallNanos : idleProbeNanos;
    this.actions = actions;
  }

  /**
   * Checks four times per the shorter period, so silence is acted on within 1.25 of it.
   */
  void start() {
    long period = Math.max(1, Math.min(stallNanos, idleProbeNanos) / 4);
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
    if (!actions.ready()) {
      return;
    }
    long now = System.nanoTime();
    long silent = now - lastProgressNanos;
    boolean probe = false;
    boolean close = false;
    boolean callsOpen = false;
    synchronized (lock) {
      if (stopped) {
        return;
      }
      if (probing && lastProgressNanos - probeSentNanos >= 0) {
        probing = false; // answered (or something else came): alive
      }
      if (probing) {
        if (now - probeSentNanos >= probeTimeoutNanos) {
          callsOpen = actions.callsOpen();
          if (actions.heldBack()) {
            probeSentNanos = now; // our own consumer is behind: keep the peer informed
            probe = true;
          } else {
            close = true;
          }
        }
      } else if (silent >= Math.min(stallNanos, idleProbeNanos)) {
        callsOpen = actions.callsOpen();
        if (silent >= (callsOpen ? stallNanos : idleProbeNanos)) {
          probing = true;
          probeSentNanos = now;
          probe = true;
        }
      }
    }
    if (probe) {
      log.log(Level.FINE, "{0}: nothing from the peer for {1} ms {2}; probing",
          new Object[] {name, TimeUnit.NANOSECONDS.toMillis(silent),
              callsOpen ? "with calls open" : "(no calls)"});
      actions.sendProbe();
    } else if (close) {
      stop();
      long ms = TimeUnit.NANOSECONDS.toMillis(silent);
      Status s = Status.UNAVAILABLE.withDescription(callsOpen
          ? "connection stalled: nothing from the peer for " + ms + " ms with calls open, and"
              + " no answer to a PING"
          : "peer not answering: nothing from it for " + ms + " ms and no answer to a PING;"
              + " it is likely gone (process ended or network lost)");
      // A stall under calls is worth an operator's glance; an idle peer that went away is the
      // life of a fleet (the registry's listeners hear of it), so FINE.
      log.log(callsOpen ? Level.INFO : Level.FINE, "{0}: {1}",
          new Object[] {name, s.getDescription()});
      actions.close(s);
    }
  }
}
