package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Status;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.ReadableBuffers;
import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.QuicStream;

/**
 * The inbound half of one call stream: a blocking loop on {@link SharedExecutors#io()} that
 * parses frames (PROTOCOL.md, "Call streams") and hands them to a {@link Handler}.
 *
 * <p>Limits are checked from the declared length before anything is allocated: a header block
 * over the metadata limit fails with RESOURCE_EXHAUSTED; DATA is read in chunks of at most
 * {@value #CHUNK} bytes whatever the declared length (grpc's deframer checks each message's
 * length against the message limit). Delivered DATA counts against a receive window until
 * the consumer reports it read ({@link #consumed}); while the window is full this loop stops
 * reading, kwik's buffer fills and QUIC flow control stops the peer.
 *
 * <p>Thread-safe. The loop runs on one io thread, which after {@link #abort} goes on reading,
 * and discarding, until the peer answers the STOP_SENDING ({@link StopReading}); {@link
 * #consumed} and {@link #abort} may be called from any thread.
 */
final class StreamReader implements Runnable {
  private static final Logger log = Logger.getLogger(StreamReader.class.getName());
  static final int CHUNK = 32 * 1024;

  /** Receives frames, on the reader thread. */
  interface Handler {
    /** Response HEADERS (the request's HEADERS are read before the stream exists). */
    void headers(HeaderBlock.Decoded headers);

    /** Part of the gRPC message stream; the handler takes ownership. */
    void data(ReadableBuffer chunk);

    /** TRAILERS; for a response without HEADERS this is a trailers-only response. */
    void trailers(HeaderBlock.Decoded trailers);

    /** A request's FIN: no more request messages (called before {@link #endOfStream}). */
    default void halfClosed() {}

    /** The peer finished its half of the stream cleanly (FIN) after a valid sequence. */
    void endOfStream();

    /** The stream failed: protocol error, limit, reset by the peer or the connection lost. */
    void failed(Status status, boolean resetByPeer);
  }

  private final QuicStream stream;
  private final InputStream in;
  private final Handler handler;
  private final Connection connection;
  private final boolean request;
  private final long window;

  private final Object lock = new Object();
  @GuardedBy("lock") private long unconsumed;
  @GuardedBy("lock") private boolean aborted;
  @GuardedBy("lock") private Thread thread;
  /** The input reached its FIN or failed (reset, closed): nothing is left to stop. */
  @GuardedBy("lock") private boolean ended;
  @GuardedBy("lock") private StopReading.Request stopRequest;
  @GuardedBy("lock") private ScheduledFuture<?> drainDeadline;
  /** run() has returned. */
  @GuardedBy("lock") private boolean finished;

  private boolean headersSeen;
  private boolean trailersSeen;

  /**
   * @param request true for a request stream (server side): DATA, then FIN; the HEADERS were
   *     consumed by {@link #readRequestHeaders}
   */
  StreamReader(QuicStream stream, InputStream in, Handler handler, Connection connection,
      boolean request) {
    this.stream = stream;
    this.in = in;
    this.handler = handler;
    this.connection = connection;
    this.request = request;
    this.window = connection.config.streamReceiveWindow;
  }

  /** A buffered input for {@code stream}, to share between the header read and the loop. */
  static InputStream input(QuicStream stream) {
    return new BufferedInputStream(new RaceSafeInput(stream.getInputStream()), 8 * 1024);
  }

  /**
   * kwik 0.10.9's {@code ReceiveBufferImpl.read} races with {@code discardAllData} (the peer's
   * RESET_STREAM, or an abort, arriving while a read runs) and then throws {@code
   * NoSuchElementException} or {@code NullPointerException}; kwik guards its {@code add}
   * against that race but not its {@code read}. The stream's flags are set by then, so the read
   * is retried once, which reports the reset the way kwik normally does (an IOException); a
   * second runtime failure becomes an IOException too. Without this, the exception would end
   * the reader thread and leave its call hanging.
   */
  static final class RaceSafeInput extends FilterInputStream {
    RaceSafeInput(InputStream kwikInput) {
      super(kwikInput);
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      int n = read(one, 0, 1);
      return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      try {
        return in.read(b, off, len);
      } catch (RuntimeException raced) {
        try {
          return in.read(b, off, len);
        } catch (RuntimeException again) {
          throw new IOException("kwik stream read failed: " + again, again);
        }
      }
    }
  }

  /**
   * Reads a request's first frame, which must be HEADERS with {@code :path}. Runs on an io
   * thread before the server stream exists.
   */
  static HeaderBlock.Decoded readRequestHeaders(InputStream in, long maxMetadataSize)
      throws IOException {
    long type = Varint.read(in);
    if (type < 0) {
      throw new EOFException("stream ended before HEADERS");
    }
    if (type != Wire.FRAME_HEADERS) {
      throw new ProtocolException("first frame of a call must be HEADERS, got 0x"
          + Long.toHexString(type));
    }
    return readBlock(in, true, maxMetadataSize);
  }

  private static HeaderBlock.Decoded readBlock(InputStream in, boolean request, long max)
      throws IOException {
    long length = Varint.read(in);
    if (length < 0) {
      throw new EOFException("stream ended inside a frame header");
    }
    if (length > max) {
      throw new MetadataTooLargeException("header block of " + length
          + " bytes is larger than the limit of " + max + " bytes");
    }
    byte[] block = in.readNBytes((int) length);
    if (block.length != length) {
      throw new ProtocolException("stream ended inside a header block (truncated HEADERS)");
    }
    return HeaderBlock.decode(block, 0, block.length, request, max);
  }

  /** The consumer has read {@code bytes} of delivered DATA; reopens the window. */
  void consumed(int bytes) {
    synchronized (lock) {
      unconsumed -= bytes;
      lock.notifyAll();
    }
  }

  /**
   * Stops reading: no more callbacks. With a {@code code} (not negative), the peer is asked to
   * stop sending (STOP_SENDING with {@code code}) and the loop reads and discards what is
   * left until the peer's FIN or reset, so kwik credits those bytes to the connection (see
   * {@link StopReading}); after the connection's idle timeout it gives up with kwik's
   * abortReading. A negative code means the connection is gone: nothing is sent.
   */
  void abort(long code) {
    synchronized (lock) {
      if (aborted) {
        return;
      }
      aborted = true;
      lock.notifyAll(); // a loop waiting for the window
      if (code >= 0 && !ended) {
        stopRequest = StopReading.request(connection.quic, stream, code);
        drainDeadline = SharedExecutors.timer().schedule(() -> giveUp(code),
            connection.config.idleTimeoutNanos, TimeUnit.NANOSECONDS);
        if (finished) {
          // The loop left before the input ended and without aborting: discard on a new task.
          StopReading.Request stop = stopRequest;
          SharedExecutors.io().execute(() -> {
            synchronized (lock) {
              thread = Thread.currentThread();
            }
            try {
              drain(stop);
            } finally {
              synchronized (lock) {
                thread = null;
              }
              Thread.interrupted();
            }
          });
        }
      } else if (thread != null) {
        // kwik aborts every stream of a closed connection, but can miss the wakeup of a reader
        // between its flag check and its wait; an interrupt makes it re-check the flags. Under
        // the lock, and only while the loop runs: the loop clears the flag when it leaves, so
        // the interrupt never reaches whatever task the pooled thread runs next.
        thread.interrupt();
      }
    }
  }

  /** The peer did not answer STOP_SENDING in time: end the read the way kwik can. */
  private void giveUp(long code) {
    StopReading.giveUp(stream, code);
    synchronized (lock) {
      if (thread != null) {
        thread.interrupt(); // as in abort: kwik can miss abortReading's wakeup
      }
    }
  }

  private boolean isAborted() {
    synchronized (lock) {
      return aborted;
    }
  }

  @Override
  public void run() {
    synchronized (lock) {
      thread = Thread.currentThread();
    }
    try {
      if (!isAborted()) {
        loop();
      }
    } catch (MetadataTooLargeException e) {
      fail(Status.RESOURCE_EXHAUSTED.withDescription(e.getMessage()), false);
    } catch (ProtocolException e) {
      fail(Status.INTERNAL.withDescription("protocol error: " + e.getMessage()), false);
    } catch (IOException e) {
      markEnded();
      if (!isAborted()) {
        String m = String.valueOf(e.getMessage());
        boolean reset = m.contains("reset by peer");
        Status s;
        if (reset) {
          s = Status.CANCELLED.withDescription("stream reset by peer");
        } else {
          s = connection.closedStatus();
          if (s == null) {
            s = Status.UNAVAILABLE.withDescription("stream read failed: " + m).withCause(e);
          }
        }
        fail(s, reset);
      }
    } catch (InterruptedException e) {
      // abort() woke us up while we waited for the window
    } finally {
      StopReading.Request stop;
      synchronized (lock) {
        finished = true; // from here on, a later abort() discards on its own task
        stop = stopRequest;
      }
      if (stop != null) {
        // Aborted with STOP_SENDING (possibly by fail() above, on this thread).
        drain(stop);
      }
      synchronized (lock) {
        thread = null;
      }
      Thread.interrupted();
    }
  }

  /** Discards the rest of the input until the peer's answer, so kwik returns the credit. */
  private void drain(StopReading.Request stop) {
    StopReading.discardRest(in);
    stop.done();
    synchronized (lock) {
      drainDeadline.cancel(false);
    }
  }

  private void markEnded() {
    synchronized (lock) {
      ended = true;
    }
  }

  private void fail(Status status, boolean resetByPeer) {
    if (!isAborted()) {
      log.log(Level.FINEST, "stream failed: {0}", status);
      handler.failed(status, resetByPeer);
    }
  }

  private void loop() throws IOException, InterruptedException {
    long maxMetadata = connection.config.maxInboundMetadataSize;
    while (true) {
      if (isAborted()) {
        return; // run() discards the rest
      }
      long type = Varint.read(in);
      if (type < 0) {
        markEnded();
        if (!request && !trailersSeen) {
          throw new ProtocolException("stream ended without TRAILERS");
        }
        if (request && !isAborted()) {
          handler.halfClosed(); // FIN is the end of the request
        }
        if (!isAborted()) {
          handler.endOfStream();
        }
        return;
      }
      if (trailersSeen) {
        throw new ProtocolException("frame after TRAILERS");
      }
      if (type == Wire.FRAME_DATA) {
        if (!request && !headersSeen) {
          throw new ProtocolException("DATA before HEADERS");
        }
        readData();
      } else if (type == Wire.FRAME_HEADERS) {
        if (request || headersSeen) {
          throw new ProtocolException("unexpected HEADERS");
        }
        headersSeen = true;
        HeaderBlock.Decoded h = readBlock(in, false, maxMetadata);
        if (!isAborted()) {
          handler.headers(h);
        }
      } else if (type == Wire.FRAME_TRAILERS) {
        if (request) {
          throw new ProtocolException("TRAILERS on a request stream");
        }
        trailersSeen = true;
        HeaderBlock.Decoded t = readBlock(in, false, maxMetadata);
        if (!isAborted()) {
          handler.trailers(t);
        }
      } else {
        throw new ProtocolException("unknown frame type 0x" + Long.toHexString(type));
      }
    }
  }

  private void readData() throws IOException, InterruptedException {
    long remaining = Varint.read(in);
    if (remaining < 0) {
      throw new EOFException("stream ended inside a frame header");
    }
    while (remaining > 0) {
      int n = (int) Math.min(remaining, CHUNK);
      synchronized (lock) {
        while (unconsumed >= window && !aborted) {
          lock.wait();
        }
        if (aborted) {
          return;
        }
        unconsumed += n;
      }
      byte[] chunk = in.readNBytes(n);
      if (chunk.length != n) {
        throw new EOFException("stream ended inside a DATA frame");
      }
      remaining -= n;
      if (isAborted()) {
        return;
      }
      handler.data(ReadableBuffers.wrap(chunk));
    }
  }
}
