package dev.brpc.quic.internal;

import java.util.List;
import java.util.Locale;
import java.util.logging.ConsoleHandler;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;

/**
 * The one switch for the transport's own logs: {@code -Dbrpc.log=FINE} (any
 * {@code java.util.logging} level name: {@code FINE}, {@code FINER}, {@code ALL}, ...) sets the
 * loggers {@code dev.brpc} and {@code tech.kwik} (kwik's messages, bridged) to that level and
 * gives them a console handler at that level, so nothing else needs configuring. Without the
 * property nothing changes: the loggers inherit the JDK's configuration (INFO by default),
 * and a {@code logging.properties} of the application's own keeps working.
 *
 * <p>Applied once per JVM, when the first server or channel chooses its engine. Thread-safe.
 */
final class LogSwitch {
  static final String PROPERTY = "brpc.log";
  /** The loggers configured; j.u.l. keeps loggers only weakly, so these keep the levels. */
  private static final List<Logger> LOGGERS =
      List.of(Logger.getLogger("dev.brpc"), Logger.getLogger("tech.kwik"));
  private static boolean applied;

  private LogSwitch() {}

  /** Applies {@code -Dbrpc.log} if set, the first time only. */
  static synchronized void applyOnce() {
    if (applied) {
      return;
    }
    applied = true;
    String value = System.getProperty(PROPERTY);
    if (value == null || value.isBlank()) {
      return;
    }
    Level level;
    try {
      level = Level.parse(value.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      Logger.getLogger("dev.brpc").log(Level.WARNING, "-D" + PROPERTY + "=" + value
          + " is not a java.util.logging level (FINE, FINER, FINEST, ALL, ...); ignored");
      return;
    }
    for (Logger logger : LOGGERS) {
      logger.setLevel(level);
      Handler handler = new ConsoleHandler();
      handler.setLevel(level);
      handler.setFormatter(new SimpleFormatter());
      logger.addHandler(handler);
      logger.setUseParentHandlers(false); // not twice: the root's handler prints INFO and up
    }
  }

  /** For tests: forgets that it ran and undoes what it set. */
  static synchronized void resetForTest() {
    applied = false;
    for (Logger logger : LOGGERS) {
      logger.setLevel(null);
      for (Handler h : logger.getHandlers()) {
        if (h instanceof ConsoleHandler) {
          logger.removeHandler(h);
        }
      }
      logger.setUseParentHandlers(true);
    }
  }
}
