package dev.brpc.quic.internal;

import dev.brpc.quic.engine.StreamHandler;
import java.io.IOException;

/**
 * Routes one stream's engine events to its reader ({@link StreamReader#pump}) and its writer
 * ({@link StreamWriter#writable}). Either may be set after the stream started: a call's reader
 * starts when the stream opens, its writer once gRPC knows the call.
 *
 * <p>Thread-safe.
 */
final class StreamEvents implements StreamHandler {
  private volatile StreamReader reader;
  private volatile StreamWriter writer;

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
    StreamReader r = reader;
    if (r != null) {
      r.pump();
    }
  }

  @Override
  public void writable() {
    StreamWriter w = writer;
    if (w != null) {
      w.writable();
    }
  }

  @Override
  public void writeFailed(IOException cause) {
    StreamWriter w = writer;
    if (w != null) {
      w.failedLater(cause);
    }
  }
}
