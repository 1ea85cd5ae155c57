package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Status;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.ReadableBuffers;
import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
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
 * <p>Thread-safe. The loop runs on one io thread; {@link #consumed} and {@link #abort} may be
 * called from any thread.
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

    /** A request's HALF_CLOSE: no more request messages. */
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

  private boolean headersSeen;
  private boolean trailersSeen;
  private boolean halfCloseSeen;

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
    return new BufferedInputStream(stream.getInputStream(), 8 * 1024);
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
   * Stops reading: STOP_SENDING with {@code code} (none if negative: the connection is gone);
   * the loop ends without calling back.
   */
  void abort(long code) {
    synchronized (lock) {
      if (aborted) {
        return;
      }
      aborted = true;
      lock.notifyAll();
    }
    if (code >= 0) {
      stream.abortReading(code);
    }
    synchronized (lock) {
      // abortReading wakes a blocked read, but kwik can miss the wakeup if the reader is
      // between its flag check and its wait; an interrupt makes it re-check the flags. Under
      // the lock, and only while the loop runs: the loop clears the flag when it leaves, so
      // the interrupt never reaches whatever task the pooled thread runs next.
      if (thread != null) {
        thread.interrupt();
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
      if (aborted) {
        return;
      }
      thread = Thread.currentThread();
    }
    try {
      loop();
    } catch (MetadataTooLargeException e) {
      fail(Status.RESOURCE_EXHAUSTED.withDescription(e.getMessage()), false);
    } catch (ProtocolException e) {
      fail(Status.INTERNAL.withDescription("protocol error: " + e.getMessage()), false);
    } catch (IOException e) {
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
      synchronized (lock) {
        thread = null;
      }
      Thread.interrupted();
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
      long type = Varint.read(in);
      if (type < 0) {
        if (!request && !trailersSeen) {
          throw new ProtocolException("stream ended without TRAILERS");
        }
        if (request && !halfCloseSeen && !isAborted()) {
          handler.halfClosed(); // FIN implies the end of the request
        }
        if (!isAborted()) {
          handler.endOfStream();
        }
        return;
      }
      if (halfCloseSeen) {
        throw new ProtocolException("frame after HALF_CLOSE");
      }
      if (trailersSeen) {
        throw new ProtocolException("frame after TRAILERS");
      }
      if (type == Wire.FRAME_HALF_CLOSE && request) {
        if (Varint.read(in) != 0) {
          throw new ProtocolException("HALF_CLOSE with a payload");
        }
        halfCloseSeen = true;
        if (!isAborted()) {
          handler.halfClosed();
        }
      } else if (type == Wire.FRAME_DATA) {
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
      handler.data(ReadableBuffers.wrap(chunk));
    }
  }
}
