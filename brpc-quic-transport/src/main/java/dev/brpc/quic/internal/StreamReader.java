package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.engine.EngineStream;
import dev.brpc.quic.engine.StreamException;
import io.grpc.Status;
import io.grpc.internal.ReadableBuffers;
import java.io.EOFException;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The inbound half of one call stream: parses frames (PROTOCOL.md, "Call streams") as they
 * arrive and hands them to a {@link Handler}, without a thread of its own.
 *
 * <p>The engine calls {@link #pump} ({@link dev.brpc.quic.engine.StreamHandler#readable})
 * whenever bytes, the FIN or a reset arrive; the pump reads only what the engine holds ({@link
 * EngineStream#read} never blocks), parses every complete frame and keeps the rest of a frame
 * for the next time. So frames are parsed, and the handler called, on the engine's thread (kwik's
 * receiver, a Netty event loop), or on the thread that reopened the window ({@link
 * #consumed}); never on a thread of our own, which saves a thread hand-off per call on each
 * side. Handlers therefore never block (they queue onto gRPC's serializing transport thread,
 * which hands application work to the call's executor).
 *
 * <p>Limits are checked from the declared length before anything is allocated: a header block
 * over the metadata limit fails with RESOURCE_EXHAUSTED; DATA is delivered in chunks of at most
 * {@value #CHUNK} bytes whatever the declared length (grpc's deframer checks each message's
 * length against the message limit). Delivered DATA counts against a receive window until the
 * consumer reports it read ({@link #consumed}); while the window is full the pump leaves the
 * bytes in the engine, whose buffer fills, and QUIC flow control stops the peer.
 *
 * <p>{@link #abort} with a code stops the stream's input ({@link EngineStream#stopSending}): the
 * engine discards what still arrives without losing the connection's credit.
 *
 * <p>Thread-safe. One pump runs at a time: a call to {@link #pump} while another runs (or from
 * inside a handler) makes the running one go round again, so the handler is never called
 * concurrently nor re-entered.
 */
final class StreamReader {
  private static final Logger log = Logger.getLogger(StreamReader.class.getName());
  static final int CHUNK = 32 * 1024;
  /** Frame headers and small frames are read from the engine in one go, through this much. */
  private static final int STAGE = 1024;

  /** Receives frames, one at a time, on whatever thread runs the pump; never blocks. */
  interface Handler {
    /**
     * A request stream's first frame, its HEADERS. Returns the handler for the rest of the
     * stream, or null if the stream was answered otherwise (refused, say): the reader then
     * stops touching it.
     */
    default Handler requestHeaders(HeaderBlock.Decoded headers) {
      throw new AssertionError("not a request stream");
    }

    /**
     * A request stream's first frame is SIDE_CHANNEL (PROTOCOL.md section 7): the stream is a
     * side channel of the call on stream {@code callStreamId}. The reader stops touching the
     * stream after this; {@code leftover} holds the raw bytes it had read past the frame.
     */
    default void sideChannel(long callStreamId, byte[] leftover) {
      throw new AssertionError("not a request stream");
    }

    /** Response HEADERS. */
    void headers(HeaderBlock.Decoded headers);

    /** Part of the gRPC message stream; the handler takes ownership. */
    void data(io.grpc.internal.ReadableBuffer chunk);

    /** TRAILERS; for a response without HEADERS this is a trailers-only response. */
    void trailers(HeaderBlock.Decoded trailers);

    /** A request's FIN: no more request messages (called before {@link #endOfStream}). */
    default void halfClosed() {}

    /** The peer finished its half of the stream cleanly (FIN) after a valid sequence. */
    void endOfStream();

    /**
     * The stream failed: protocol error, limit, reset by the peer or the connection lost. On
     * a request stream before its HEADERS, the reader stops touching the stream after this.
     */
    void failed(Status status, boolean resetByPeer);
  }

  private enum Phase { TYPE, LENGTH, BLOCK, DATA }

  private final EngineStream stream;
  private final Connection connection;
  private final boolean request;
  private final long window;
  private final long maxMetadata;
  private final AtomicInteger pumps = new AtomicInteger();

  private final Object lock = new Object();
  @GuardedBy("lock") private long unconsumed;
  /** The pump stopped at a DATA frame because the window was full. */
  @GuardedBy("lock") private boolean windowFull;
  @GuardedBy("lock") private boolean aborted;
  /** Nothing more to read: the pump does nothing. */
  @GuardedBy("lock") private boolean done;

  // Parser state, touched only by the running pump (the pumps counter orders the pumps).
  private Handler handler;
  /** No more frames are parsed (the input ended, failed, or a frame was bad). */
  private boolean stopped;
  private Phase phase = Phase.TYPE;
  private long frameType;
  /** DATA: bytes of the frame not delivered yet. */
  private long remaining;
  /** BLOCK: the header block so far; it grows as its bytes arrive, up to blockLength. */
  private byte[] block;
  private int blockFilled;
  private int blockLength;
  private boolean headersSeen;
  private boolean trailersSeen;
  private boolean eof;
  /** Bytes read from the engine and not parsed yet: {@code stage[pos..lim)}. */
  private byte[] stage;
  private int pos;
  private int lim;

  /**
   * @param request true for a request stream (server side): HEADERS, then DATA, then FIN;
   *     {@code handler} gets {@link Handler#requestHeaders} and returns the call's handler
   */
  StreamReader(EngineStream stream, Handler handler, Connection connection, boolean request) {
    this(stream, handler, connection, request, connection.config.maxInboundMetadataSize);
  }

  /** @param maxMetadata the header block limit, for a request the serving server's own */
  StreamReader(EngineStream stream, Handler handler, Connection connection, boolean request,
      long maxMetadata) {
    this.stream = stream;
    this.handler = handler;
    this.connection = connection;
    this.request = request;
    this.window = connection.config.streamReceiveWindow;
    this.maxMetadata = maxMetadata;
  }

  /**
   * Starts the stream with {@code events} (whose reader is this) and parses what is there
   * already. Any thread; on a stream we opened, before anything could arrive on it.
   */
  void start(StreamEvents events) {
    stream.start(events);
  }

  /** The consumer has read {@code bytes} of delivered DATA; reopens the window. */
  void consumed(int bytes) {
    boolean reopened;
    synchronized (lock) {
      unconsumed -= bytes;
      reopened = windowFull && unconsumed < window;
      if (reopened) {
        windowFull(false);
      }
    }
    if (reopened) {
      pump();
    }
  }

  /**
   * Stops reading: no more callbacks. With a {@code code} (not negative), the peer is asked to
   * stop sending (STOP_SENDING with {@code code}); the engine discards what is left without
   * losing flow-control credit. A negative code means the connection is gone: nothing is sent.
   */
  void abort(long code) {
    synchronized (lock) {
      if (aborted) {
        return;
      }
      aborted = true;
      done = true;
      windowFull(false);
    }
    if (code >= 0) {
      stream.stopSending(code);
    }
  }

  /** Reads and parses what the engine holds now (see the class); any thread, never blocks. */
  void pump() {
    if (pumps.getAndIncrement() != 0) {
      return; // the running pump goes round again
    }
    int missed = 1;
    do {
      try {
        drive();
      } catch (Throwable t) {
        // An Error, or a handler failing while it reports a failure. The counter must still
        // go down, or no later pump would run for this stream; the call is failed, once.
        log.log(Level.SEVERE, "stream " + stream.id() + ": reading failed", t);
        if (!stopped) {
          stopped = true;
          try {
            handler.failed(Status.INTERNAL.withDescription("reading the stream failed: " + t)
                .withCause(t), false);
          } catch (Throwable again) {
            log.log(Level.SEVERE, "stream " + stream.id() + ": failing it failed", again);
          }
        }
      }
      missed = pumps.addAndGet(-missed);
    } while (missed != 0);
  }

  private void drive() {
    while (true) {
      synchronized (lock) {
        if (done) {
          return;
        }
      }
      if (stopped) {
        return;
      }
      try {
        if (!step()) {
          return;
        }
      } catch (MetadataTooLargeException e) {
        fail(Status.RESOURCE_EXHAUSTED.withDescription(e.getMessage()).withCause(e), false);
      } catch (ProtocolException e) {
        fail(Status.INTERNAL.withDescription("protocol error: " + e.getMessage()).withCause(e),
            false);
      } catch (StreamException e) {
        stopped = true;
        if (e.kind() == StreamException.Kind.RESET) {
          fail(Status.CANCELLED.withDescription("stream reset by peer"), true);
        } else {
          Status s = connection.closedStatus();
          fail(s != null ? s : Status.UNAVAILABLE.withDescription("stream closed: "
              + e.getMessage()).withCause(e), false);
        }
      } catch (IOException e) {
        stopped = true;
        Status s = connection.closedStatus();
        fail(s != null ? s : Status.UNAVAILABLE.withDescription("stream read failed: "
            + e.getMessage()).withCause(e), false);
      } catch (RuntimeException e) {
        // A bug, in a handler or here. Not into the engine's thread: fail this call alone.
        log.log(Level.SEVERE, "stream " + stream.id() + ": reading failed", e);
        fail(Status.INTERNAL.withDescription("reading the stream failed: " + e).withCause(e),
            false);
      }
      // After a failure the loop goes round: the handler usually aborted the reader.
    }
  }

  private void markEnded() {
    stopped = true;
  }

  private boolean isAborted() {
    synchronized (lock) {
      return aborted;
    }
  }

  private void fail(Status status, boolean resetByPeer) {
    stopped = true;
    if (isAborted()) {
      return;
    }
    log.log(Level.FINEST, "stream failed: {0}", status);
    Handler h = handler;
    if (request && !headersSeen) {
      done(); // the transport deals with the stream now
    }
    h.failed(status, resetByPeer);
  }

  private void done() {
    stopped = true;
    synchronized (lock) {
      done = true;
      windowFull(false);
    }
  }

  /**
   * Enters or leaves the window-full state, telling the connection: while the consumer holds a
   * stream back, the peer's silence is ours, not a stall ({@link Connection#heldBack}).
   */
  @GuardedBy("lock")
  private void windowFull(boolean full) {
    if (windowFull != full) {
      windowFull = full;
      connection.heldBack(full);
    }
  }

  /**
   * Makes progress on the current frame with what the engine holds. Returns false when it needs
   * bytes that have not arrived, or room in the window.
   */
  private boolean step() throws IOException {
    switch (phase) {
      case TYPE:
        return readType();
      case LENGTH:
        return readLength();
      case BLOCK:
        return readBlock();
      default:
        return readData();
    }
  }

  private boolean readType() throws IOException {
    if (!buffer(1)) {
      if (eof) {
        if (pos < lim) {
          throw new EOFException("stream ended inside a varint");
        }
        endOfInput();
      }
      return false;
    }
    if (!buffer(varintSize())) {
      if (eof) {
        throw new EOFException("stream ended inside a varint");
      }
      return false;
    }
    long type = varint();
    if (trailersSeen) {
      throw new ProtocolException("frame after TRAILERS");
    }
    if (request && !headersSeen) {
      if (type != Wire.FRAME_HEADERS && type != Wire.FRAME_SIDE_CHANNEL) {
        throw new ProtocolException("first frame of a call must be HEADERS, got 0x"
            + Long.toHexString(type));
      }
    } else if (type == Wire.FRAME_DATA) {
      if (!request && !headersSeen) {
        throw new ProtocolException("DATA before HEADERS");
      }
    } else if (type == Wire.FRAME_HEADERS) {
      if (request || headersSeen) {
        throw new ProtocolException("unexpected HEADERS");
      }
    } else if (type == Wire.FRAME_TRAILERS) {
      if (request) {
        throw new ProtocolException("TRAILERS on a request stream");
      }
    } else {
      throw new ProtocolException("unknown frame type 0x" + Long.toHexString(type));
    }
    frameType = type;
    phase = Phase.LENGTH;
    return true;
  }

  private boolean readLength() throws IOException {
    if (!buffer(1) || !buffer(varintSize())) {
      if (eof) {
        throw new EOFException("stream ended inside a frame header");
      }
      return false;
    }
    long length = varint();
    if (frameType == Wire.FRAME_DATA) {
      remaining = length;
      phase = length == 0 ? Phase.TYPE : Phase.DATA;
      return true;
    }
    if (frameType == Wire.FRAME_SIDE_CHANNEL && (length < 1 || length > 8)) {
      throw new ProtocolException("SIDE_CHANNEL frame of " + length + " bytes");
    }
    if (length > maxMetadata) {
      throw new MetadataTooLargeException("header block of " + length
          + " bytes is larger than the limit of " + maxMetadata + " bytes");
    }
    // Not the declared length at once: a peer could declare the limit on many streams and
    // send nothing more. The block grows as its bytes arrive.
    blockLength = (int) length;
    block = new byte[Math.min(blockLength, STAGE)];
    blockFilled = 0;
    phase = Phase.BLOCK;
    return true;
  }

  private boolean readBlock() throws IOException {
    while (true) {
      int n = take(block, blockFilled, block.length - blockFilled);
      blockFilled += n;
      if (blockFilled == blockLength) {
        break;
      }
      if (blockFilled < block.length) {
        if (eof) {
          throw new ProtocolException(
              "stream ended inside a header block (truncated HEADERS)");
        }
        return false;
      }
      block = java.util.Arrays.copyOf(block, (int) Math.min(blockLength, 2L * block.length));
    }
    byte[] b = block;
    block = null;
    phase = Phase.TYPE;
    if (frameType == Wire.FRAME_SIDE_CHANNEL) {
      int[] p = {0};
      long callStreamId = Varint.read(b, p, b.length);
      if (p[0] != b.length) {
        throw new ProtocolException("SIDE_CHANNEL frame with trailing bytes");
      }
      headersSeen = true; // the stream is the side channel's now: failures are not ours
      byte[] leftover = stage == null ? new byte[0]
          : java.util.Arrays.copyOfRange(stage, pos, lim);
      pos = lim;
      done();
      handler.sideChannel(callStreamId, leftover);
      return true;
    }
    if (frameType == Wire.FRAME_HEADERS) {
      headersSeen = true;
      HeaderBlock.Decoded h = HeaderBlock.decode(b, 0, b.length, request, maxMetadata);
      if (request) {
        Handler next = handler.requestHeaders(h);
        if (next == null) {
          if (!isAborted()) {
            done(); // answered otherwise (or aborted by a CANCEL that came first)
          }
          return true;
        }
        handler = next;
      } else if (!isAborted()) {
        handler.headers(h);
      }
    } else {
      trailersSeen = true;
      HeaderBlock.Decoded t = HeaderBlock.decode(b, 0, b.length, false, maxMetadata);
      if (!isAborted()) {
        handler.trailers(t);
      }
    }
    return true;
  }

  private boolean readData() throws IOException {
    int n = (int) Math.min(remaining, CHUNK);
    synchronized (lock) {
      if (aborted) {
        return true; // drive() stops
      }
      if (unconsumed >= window) {
        windowFull(true); // consumed() pumps again
        return false;
      }
    }
    n = (int) Math.min(n, (long) (lim - pos) + stream.available());
    if (n == 0) {
      buffer(1); // at the end, or reset: finds out which
      if (eof) {
        throw new EOFException("stream ended inside a DATA frame");
      }
      return false;
    }
    byte[] chunk = new byte[n];
    if (take(chunk, 0, n) != n) {
      throw new EOFException("stream ended inside a DATA frame");
    }
    synchronized (lock) {
      unconsumed += n;
    }
    remaining -= n;
    if (remaining == 0) {
      phase = Phase.TYPE;
    }
    if (!isAborted()) {
      handler.data(ReadableBuffers.wrap(chunk));
    }
    return true;
  }

  /** The FIN, at a frame boundary. */
  private void endOfInput() throws IOException {
    markEnded();
    if (request && !headersSeen) {
      throw new EOFException("stream ended before HEADERS");
    }
    if (!request && !trailersSeen) {
      throw new ProtocolException("stream ended without TRAILERS");
    }
    if (request && !isAborted()) {
      handler.halfClosed(); // FIN is the end of the request
    }
    if (!isAborted()) {
      handler.endOfStream();
    }
  }

  private int varintSize() {
    return 1 << ((stage[pos] & 0xff) >>> 6);
  }

  private long varint() throws ProtocolException {
    int[] p = {pos};
    long v = Varint.read(stage, p, lim);
    pos = p[0];
    return v;
  }

  /**
   * Makes {@code n} (at most {@value #STAGE}) bytes available in the stage if the engine has
   * them, reading only what it holds. False if they are not there (yet), or the input
   * ended ({@link #eof}); a reset or a closed connection throws.
   */
  private boolean buffer(int n) throws IOException {
    while (lim - pos < n) {
      if (eof) {
        return false;
      }
      if (stage == null) {
        stage = new byte[STAGE];
      } else if (pos > 0) {
        System.arraycopy(stage, pos, stage, 0, lim - pos);
        lim -= pos;
        pos = 0;
      }
      int read = stream.read(stage, lim, stage.length - lim);
      if (read < 0) {
        connection.progress();
        eof = true;
        return false;
      }
      if (read == 0) {
        return false;
      }
      connection.progress();
      lim += read;
    }
    return true;
  }

  /**
   * Copies up to {@code len} bytes into {@code dst}: first what the stage holds, then straight
   * from the engine, as much as it holds. Returns how many; sets {@link #eof} at the FIN.
   */
  private int take(byte[] dst, int off, int len) throws IOException {
    int n = Math.min(len, lim - pos);
    System.arraycopy(stage == null ? dst : stage, pos, dst, off, n);
    pos += n;
    while (n < len && !eof) {
      int read = stream.read(dst, off + n, len - n);
      if (read < 0) {
        connection.progress();
        eof = true;
      } else if (read == 0) {
        break;
      } else {
        connection.progress();
        n += read;
      }
    }
    return n;
  }
}
