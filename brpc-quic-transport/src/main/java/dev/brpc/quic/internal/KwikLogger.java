package dev.brpc.quic.internal;

import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.log.NullLogger;

/**
 * Bridges kwik's own logger to {@code java.util.logging} under the logger name
 * {@code tech.kwik}. kwik reports routine events as errors (a connection closing, "sender is
 * looping in busy wait"), so its errors are logged at FINE and its warnings at FINER: quiet by
 * default, visible when {@code tech.kwik} is set to FINE or lower.
 *
 * <p>Thread-safe: kwik calls it from its own threads.
 */
final class KwikLogger extends NullLogger {
  static final KwikLogger INSTANCE = new KwikLogger();
  private static final Logger log = Logger.getLogger("tech.kwik");

  private KwikLogger() {}

  @Override
  public void error(String message) {
    log.log(Level.FINE, message);
  }

  @Override
  public void error(String message, Throwable error) {
    log.log(Level.FINE, message, error);
  }

  @Override
  public void warn(String message) {
    log.log(Level.FINER, message);
  }

  @Override
  public void info(String message) {
    log.log(Level.FINEST, message);
  }

  @Override
  public void debug(String message) {
    log.log(Level.FINEST, message);
  }

  @Override
  public void debug(String message, Exception error) {
    log.log(Level.FINEST, message, error);
  }
}
