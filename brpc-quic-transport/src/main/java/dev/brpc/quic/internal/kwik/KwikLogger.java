package dev.brpc.quic.internal.kwik;

import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.log.NullLogger;

/**
 * Bridges kwik's own logger to {@code java.util.logging} under the logger name
 * {@code tech.kwik}. kwik reports routine events as errors (a connection closing, "sender is
 * looping in busy wait"), so its errors are logged at FINE and its warnings at FINER: quiet by
 * default, visible when {@code tech.kwik} is set to FINE or lower. An error that carries an
 * exception is kwik failing inside: logged at WARNING (a loss-detection handler that threw),
 * or at SEVERE when a connection's sender or receiver thread died,
 * which leaves the connection unable to send or receive (a server connection is not even
 * closed: kwik only unregisters it). A failed handshake is logged at FINE: the dial's Status
 * says why. Tests fail on SEVERE records ({@code SevereLogs}).
 *
 * <p>Thread-safe: kwik calls it from its own threads.
 */
public final class KwikLogger extends NullLogger {
  public static final KwikLogger INSTANCE = new KwikLogger();
  private static final Logger log = Logger.getLogger("tech.kwik");

  private KwikLogger() {}

  @Override
  public void error(String message) {
    log.log(Level.FINE, message);
  }

  @Override
  public void error(String message, Throwable error) {
    if (message.startsWith("Handshake failed")) {
      // A refused certificate, a TLS alert: the dial's Status already says why, in words
      // (KwikEngine.failure); a stack trace at WARNING would be noise in every log.
      log.log(Level.FINE, message, error);
      return;
    }
    boolean fatal = message.startsWith("Sender thread aborted")
        || message.startsWith("IOException while receiving datagrams")
        || message.endsWith("aborted due to internal error")
        || message.startsWith("Uncaught exception in server receive loop");
    log.log(fatal ? Level.SEVERE : Level.WARNING, message, error);
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
