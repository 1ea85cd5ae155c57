package dev.brpc.quic.internal;

import dev.brpc.quic.engine.StreamHandler;
import java.io.IOException;

/**
 * Routes one stream's engine events to its reader ({@link StreamReader#pump}) and its writer
 * ({@link StreamWriter#writable}). Either may be set after the stream started: a call's reader
 * starts when the stream opens, its writer once gRPC knows the call. A stream whose first frame
 * makes it a side channel is handed over to that ({@link #handOver}).
 *
 * <p>Thread-safe.
 */
final class StreamEvents implements StreamHandler {
  private volatile StreamReader reader;
  private volatile StreamWriter writer;
  /** Set when the stream turned out to be a side channel: it gets every event from then on. */
  private volatile StreamHandler handOver;

  /** From now on {@code h} gets the stream's events (a side channel, after its first frame). */
  void handOver(StreamHandler h) {
    handOver = h;
  }

  StreamEvents reader(StreamReader r) {
    reader = r;
    return this;
  }

  StreamEvents writer(StreamWriter w) {
    writer = w;
    return this;
  }

  @Override
  public void readable() {
    StreamHandler h = handOver;
    if (h != null) {
      h.readable();
      return;
    }
    StreamReader r = reader;
    if (r != null) {
      r.pump();
    }
  }

  @Override
  public void writable() {
    StreamHandler h = handOver;
    if (h != null) {
      h.writable();
      return;
    }
    StreamWriter w = writer;
    if (w != null) {
      w.writable();
    }
  }

  @Override
  public void writeFailed(IOException cause) {
    StreamHandler h = handOver;
    if (h != null) {
      h.writeFailed(cause);
      return;
    }
    StreamWriter w = writer;
    if (w != null) {
      w.failedLater(cause);
    }
  }
}
