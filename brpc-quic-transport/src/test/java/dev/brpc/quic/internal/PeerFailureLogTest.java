package dev.brpc.quic.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The operator's log of refused connections: one line per peer host, a flood capped. */
class PeerFailureLogTest {
  private final Logger logger = Logger.getLogger("dev.brpc.test.PeerFailureLogTest");
  private final List<LogRecord> records = new ArrayList<>();
  private final Handler handler = new Handler() {
    @Override
    public void publish(LogRecord r) {
      synchronized (records) {
        records.add(r);
      }
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
  };
  private final AtomicLong now = new AtomicLong();
  private final PeerFailureLog log = new PeerFailureLog(logger, now::get);

  @BeforeEach
  void capture() {
    logger.setUseParentHandlers(false);
    logger.setLevel(Level.ALL);
    logger.addHandler(handler);
  }

  @AfterEach
  void release() {
    logger.removeHandler(handler);
  }

  private List<LogRecord> at(Level level) {
    synchronized (records) {
      return records.stream().filter(r -> r.getLevel() == level).toList();
    }
  }

  private static InetSocketAddress peer(int host, int port) {
    return new InetSocketAddress("10.0.0." + host, port);
  }

  @Test
  void aFailure_isOneWarningLineWithThePeerAndTheReason_theStackOnlyAtFine() {
    Exception cause = new Exception("the authenticator's reason");
    assertTrue(log.failed(peer(1, 4000), "refused: UNAUTHENTICATED: bad token", cause));
    List<LogRecord> warnings = at(Level.WARNING);
    assertEquals(1, warnings.size());
    assertEquals("/10.0.0.1:4000: refused: UNAUTHENTICATED: bad token",
        warnings.get(0).getMessage());
    assertNull(warnings.get(0).getThrown(), "no stack trace at WARNING");
    assertEquals(cause, at(Level.FINE).get(0).getThrown());
  }

  @Test
  void aPeerHost_isLoggedOncePerMinute_whateverItsPorts_andTheNextLineCountsWhatWasLeftOut() {
    assertTrue(log.failed(peer(1, 4000), "refused", null));
    for (int port = 4001; port < 4006; port++) {
      assertFalse(log.failed(peer(1, port), "refused", null));
    }
    assertTrue(log.failed(peer(2, 5000), "refused", null), "another host is logged");
    now.addAndGet(PeerFailureLog.WINDOW_NANOS);
    assertTrue(log.failed(peer(1, 4007), "refused", null), "a minute later, logged again");
    List<LogRecord> warnings = at(Level.WARNING);
    assertEquals(3, warnings.size());
    assertFalse(warnings.get(0).getMessage().contains("more such failures"));
    assertTrue(warnings.get(1).getMessage().startsWith("/10.0.0.2:5000: refused (5 more such"),
        warnings.get(1).getMessage());
  }

  @Test
  void aFloodFromManyHosts_isCappedPerMinute() {
    int logged = 0;
    for (int i = 0; i < 1000; i++) {
      if (log.failed(new InetSocketAddress("10.1." + (i / 250) + "." + (i % 250), 1), "x",
          null)) {
        logged++;
      }
    }
    assertEquals(PeerFailureLog.LINES_PER_WINDOW, logged);
    now.addAndGet(TimeUnit.SECONDS.toNanos(61));
    assertTrue(log.failed(peer(9, 1), "x", null));
    List<LogRecord> warnings = at(Level.WARNING);
    assertTrue(warnings.get(warnings.size() - 1).getMessage()
        .contains("(" + (1000 - PeerFailureLog.LINES_PER_WINDOW) + " more such failures"));
  }

  @Test
  void manyHosts_areRememberedBoundedly() {
    // A new host each minute, for longer than MAX_PEERS minutes: each is logged and
    // remembered, and the map must still stay bounded.
    int max = 0;
    for (int i = 0; i < PeerFailureLog.MAX_PEERS + 100; i++) {
      now.addAndGet(PeerFailureLog.WINDOW_NANOS);
      assertTrue(log.failed(new InetSocketAddress("10.2." + (i / 250) + "." + (i % 250), 1),
          "x", null));
      max = Math.max(max, log.peersRemembered());
    }
    assertEquals(PeerFailureLog.MAX_PEERS, max);
    assertTrue(log.peersRemembered() < 200, "old hosts were not forgotten");
  }
}
