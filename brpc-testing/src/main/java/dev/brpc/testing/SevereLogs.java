package dev.brpc.testing;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Records what gRPC and the transport log at SEVERE while a test runs. gRPC reports a misused
 * stream state (a listener closed twice, progress reported on an unallocated stream) only by
 * logging it from its serializing executor, so a test that ends without failing can still
 * have broken the contract; {@link #assertNone} makes it fail.
 *
 * <p>Thread-safe.
 */
public final class SevereLogs extends Handler {
  private static final String[] LOGGERS = {"io.grpc", "dev.brpc"};
  private final List<LogRecord> records = new ArrayList<>();

  public static SevereLogs start() {
    SevereLogs h = new SevereLogs();
    h.setLevel(Level.SEVERE);
    for (String name : LOGGERS) {
      Logger.getLogger(name).addHandler(h);
    }
    return h;
  }

  @Override
  public synchronized void publish(LogRecord record) {
    if (isLoggable(record)) {
      records.add(record);
    }
  }

  @Override
  public void flush() {}

  @Override
  public void close() {
    for (String name : LOGGERS) {
      Logger.getLogger(name).removeHandler(this);
    }
  }

  /** Stops recording; throws if anything was logged at SEVERE. */
  public synchronized void assertNone() {
    close();
    if (!records.isEmpty()) {
      LogRecord first = records.get(0);
      AssertionError e = new AssertionError(records.size() + " SEVERE log record(s); first: "
          + first.getLoggerName() + ": " + first.getMessage(), first.getThrown());
      throw e;
    }
  }
}
