package dev.brpc.quic.internal;

import dev.brpc.quic.engine.EngineStream;
import dev.brpc.quic.engine.StreamHandler;
import java.io.EOFException;
import java.io.IOException;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Reads the peer's control stream (PROTOCOL.md, "Control streams") as its bytes arrive: frames
 * are parsed where the engine reports them, without a reader thread, and each complete frame
 * goes to the {@link Frames} callback. A frame over {@link Wire#MAX_CONTROL_FRAME_SIZE} fails
 * from its declared length, before anything is allocated for it.
 *
 * <p>Thread-safe: the pump is serialized by a counter, as {@link StreamReader}'s is; frames are
 * delivered one at a time, in order, on whichever thread runs the pump. Never blocks.
 */
final class ControlReader implements StreamHandler {
  /** Receives the control frames; never blocks. */
  interface Frames {
    void frame(long type, byte[] payload) throws ProtocolException, MetadataTooLargeException;

    /** The stream failed: the peer closed it, broke the protocol, or the connection is gone. */
    void failed(Exception e);
  }

  private final EngineStream stream;
  private final Frames frames;
  private final AtomicInteger pumps = new AtomicInteger();
  // Touched only by the running pump.
  private byte[] buffer = new byte[512];
  private int filled;
  private boolean over;

  ControlReader(EngineStream stream, Frames frames) {
    this.stream = stream;
    this.frames = frames;
  }

  void start() {
    stream.start(this);
  }

  @Override
  public void readable() {
    if (pumps.getAndIncrement() != 0) {
      return; // the running pump goes round again
    }
    int missed = 1;
    do {
      if (!over) {
        try {
          drain();
        } catch (IOException | RuntimeException e) { // protocol errors and limits included
          over = true;
          frames.failed(e);
        }
      }
      missed = pumps.addAndGet(-missed);
    } while (missed != 0);
  }

  @Override
  public void writable() {}

  private void drain() throws IOException, ProtocolException, MetadataTooLargeException {
    while (true) {
      if (filled == buffer.length) {
        buffer = Arrays.copyOf(buffer, buffer.length * 2);
      }
      int n = stream.read(buffer, filled, buffer.length - filled);
      if (n < 0) {
        throw new EOFException("peer closed its control stream");
      }
      filled += n;
      parse();
      if (n == 0) {
        return;
      }
    }
  }

  /** Delivers every complete frame in the buffer and keeps the rest. */
  private void parse() throws ProtocolException, MetadataTooLargeException {
    int pos = 0;
    while (true) {
      int[] p = {pos};
      long type = Varint.readIfComplete(buffer, p, filled);
      if (type < 0) {
        break;
      }
      long length = Varint.readIfComplete(buffer, p, filled);
      if (length < 0) {
        break;
      }
      if (length > Wire.MAX_CONTROL_FRAME_SIZE) {
        throw new ProtocolException("control frame of " + length + " bytes is over the limit");
      }
      if (filled - p[0] < length) {
        break; // drain() grows the buffer as the frame's bytes arrive; the limit bounds it
      }
      byte[] payload = Arrays.copyOfRange(buffer, p[0], p[0] + (int) length);
      pos = p[0] + (int) length;
      frames.frame(type, payload);
    }
    if (pos > 0) {
      System.arraycopy(buffer, pos, buffer, 0, filled - pos);
      filled -= pos;
    }
  }
}
