package dev.brpc;

import java.util.List;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Calls user listeners on transport threads: one that throws is logged and does not keep the
 * others, or the transport, from going on.
 *
 * <p>Thread-safe.
 */
final class ListenerCalls {
  private static final Logger log = Logger.getLogger(ListenerCalls.class.getName());

  private ListenerCalls() {}

  /** Runs {@code event} on each listener; {@code what} names the callback for the log. */
  static <L> void fire(List<L> listeners, Consumer<L> event, String what) {
    for (L l : listeners) {
      try {
        event.accept(l);
      } catch (RuntimeException e) {
        log.log(Level.WARNING, what + " threw", e);
      }
    }
  }
}
