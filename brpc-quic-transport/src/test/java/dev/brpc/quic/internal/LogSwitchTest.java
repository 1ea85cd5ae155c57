package dev.brpc.quic.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.logging.ConsoleHandler;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@code -Dbrpc.log}: the one switch for the transport's FINE logs. */
class LogSwitchTest {
  private final Logger brpc = Logger.getLogger("dev.brpc");
  private final Logger kwik = Logger.getLogger("tech.kwik");

  @AfterEach
  void tearDown() {
    System.clearProperty(LogSwitch.PROPERTY);
    LogSwitch.resetForTest();
  }

  @Test
  void unset_changesNothing() {
    LogSwitch.resetForTest();
    Engines.choose(null);
    assertNull(brpc.getLevel());
    assertFalse(brpc.isLoggable(Level.FINE), "quiet by default");
  }

  @Test
  void fine_turnsOnTheTransportsAndKwiksFineLogs_withAConsoleHandler() {
    LogSwitch.resetForTest();
    System.setProperty(LogSwitch.PROPERTY, "fine");
    Engines.choose(null);
    for (Logger l : new Logger[] {brpc, kwik}) {
      assertEquals(Level.FINE, l.getLevel(), l.getName());
      assertTrue(Logger.getLogger(l.getName() + ".quic.internal.Connection")
          .isLoggable(Level.FINE), l.getName());
      assertTrue(Arrays.stream(l.getHandlers()).anyMatch(h -> h instanceof ConsoleHandler
          && h.getLevel() == Level.FINE), l.getName());
    }
  }

  @Test
  void notALevel_isIgnored() {
    LogSwitch.resetForTest();
    System.setProperty(LogSwitch.PROPERTY, "loud");
    Engines.choose(null);
    assertNull(brpc.getLevel());
  }
}
