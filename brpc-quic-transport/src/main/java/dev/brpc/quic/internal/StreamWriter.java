package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayDeque;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.QuicStream;

/**
 * The outbound half of one call stream. gRPC threads enqueue frames and never block. At a
 * flush (gRPC's own flush points, and always for FIN), whatever is queued is coalesced into one
 * write (HEADERS, DATA and TRAILERS of a unary response leave as one write, usually one packet).
 *
 * <p><b>Who writes.</b> kwik's write blocks only while its stream send buffer is full; our
 * {@link KwikSendFix} buffer tells how full it is. A flush writes inline, on the flushing
 * thread, when the batch fits in the free space, which cannot block: this side is the stream's
 * only writer and only kwik's sender empties the buffer meanwhile. A batch that does not fit
 * (a large message, a stream whose peer is not reading) goes to one task on
 * {@link SharedExecutors#io()}, which may block; it keeps the turn until the queue is empty.
 * So a unary call hands its request and its response to kwik without a thread hand-off.
 * {@link Callback#written} reports bytes only once kwik has taken them, which drives gRPC's
 * {@code isReady()}.
 *
 * <p>Thread-safe. Writes to kwik happen on one thread at a time, as kwik requires.
 */
final class StreamWriter {
  private static final Logger log = Logger.getLogger(StreamWriter.class.getName());
  private static final int COALESCE_LIMIT = 64 * 1024;

  /** Reports progress; called on the writing thread, outside the lock. */
  interface Callback {
    /** {@code flowBytes} DATA payload bytes were taken by kwik. */
    void written(int flowBytes);

    /** Writing failed; nothing more will be written. */
    void writeFailed(IOException e);

    /** Everything queued, including FIN, was handed to kwik. */
    void finished();
  }

  private static final class Item {
    final byte[] array;
    final int offset;
    final int length;
    final int flowBytes;

    Item(byte[] array, int offset, int length, int flowBytes) {
      this.array = array;
      this.offset = offset;
      this.length = length;
      this.flowBytes = flowBytes;
    }
  }

  private final Object lock = new Object();
  private final Callback callback;
  @GuardedBy("lock") private final ArrayDeque<Item> queue = new ArrayDeque<>();
  @GuardedBy("lock") private QuicStream stream;
  /** kwik's send buffer of {@link #stream}, or null if it is not ours: never write inline. */
  @GuardedBy("lock") private KwikSendFix.Buffer buffer;
  /** A thread is writing (inline or the io task); others only queue. */
  @GuardedBy("lock") private boolean running;
  /** A flush was asked for and the queue has not been empty since. */
  @GuardedBy("lock") private boolean flushPending;
  @GuardedBy("lock") private boolean finQueued;
  @GuardedBy("lock") private boolean done;
  /** The last batch, ending with FIN, is being (or has been) handed to kwik. */
  @GuardedBy("lock") private boolean finTaken;
  /** A reset asked for before the stream was attached; sent by attach. */
  @GuardedBy("lock") private long pendingResetCode = -1;

  StreamWriter(Callback callback) {
    this.callback = callback;
  }

  /**
   * The stream is open: write what is queued and flushed (or reset it, if reset came first).
   * {@link KwikSendFix#apply} has run on it.
   */
  void attach(QuicStream stream) {
    long resetCode;
    synchronized (lock) {
      this.stream = stream;
      this.buffer = KwikSendFix.buffer(stream);
      if (!done) {
        resetCode = -1;
      } else {
        resetCode = pendingResetCode;
      }
    }
    if (resetCode >= 0) {
      stream.resetStream(resetCode);
    } else {
      drain();
    }
  }

  /** Queues a control or HEADERS/TRAILERS frame; {@code flush} writes it (and what precedes). */
  void enqueue(byte[] frame, boolean flush) {
    enqueue(new Item(frame, 0, frame.length, 0), flush);
  }

  /** Queues a DATA frame. */
  void enqueue(DataFrameBuffer buffer, boolean flush) {
    int start = buffer.seal();
    enqueue(new Item(buffer.array(), start, buffer.end() - start, buffer.readableBytes()),
        flush);
  }

  private void enqueue(Item item, boolean flush) {
    synchronized (lock) {
      if (done || finQueued) {
        return;
      }
      queue.add(item);
      if (!flush) {
        return;
      }
      flushPending = true;
    }
    drain();
  }

  /** Writes what is queued. */
  void flush() {
    synchronized (lock) {
      if (queue.isEmpty()) {
        return;
      }
      flushPending = true;
    }
    drain();
  }

  /**
   * Queues the end of the stream (QUIC FIN) after everything queued so far, and flushes.
   * Returns false if the writer had already ended (reset or failed): no
   * {@link Callback#finished} will follow.
   */
  boolean finish() {
    return finish(null);
  }

  /**
   * Queues {@code lastFrame} (unless null) and FIN after it, in one step: a writer that is
   * running cannot write the frame without the FIN. (Between two steps it could, and the
   * peer, answering the frame, could reset the stream before FIN was taken: a callee would
   * then take the caller's NO_ERROR reset after its trailers for a cancel.) A frame offered
   * once FIN is queued is dropped.
   */
  boolean finish(byte[] lastFrame) {
    synchronized (lock) {
      if (done || (finQueued && lastFrame != null)) {
        return !done;
      }
      if (lastFrame != null) {
        queue.add(new Item(lastFrame, 0, lastFrame.length, 0));
      }
      finQueued = true;
    }
    drain();
    return true;
  }

  /**
   * Whether everything up to FIN has been taken for writing: only the last write, or its
   * {@link Callback#finished} report, may still be under way.
   */
  boolean finTaken() {
    synchronized (lock) {
      return finTaken;
    }
  }

  /**
   * Drops what is queued and resets the stream with {@code code}, unless FIN was already
   * written; a negative code only stops the writer (the connection is gone). Returns true if
   * this call ended the writer.
   */
  boolean reset(long code) {
    QuicStream s;
    synchronized (lock) {
      if (done) {
        return false;
      }
      done = true;
      queue.clear();
      s = stream;
      if (s == null) {
        pendingResetCode = code; // not attached yet: attach sends it
      }
    }
    if (s != null && code >= 0) {
      s.resetStream(code); // a no-op after FIN was written, as QUIC allows
    }
    return true;
  }

  /** Writes what is flushed, inline while that cannot block, unless a writer is running. */
  private void drain() {
    synchronized (lock) {
      if (running || !writableLocked()) {
        return;
      }
      running = true;
    }
    write(false);
  }

  @GuardedBy("lock")
  private boolean writableLocked() {
    return !done && stream != null && (finQueued || (flushPending && !queue.isEmpty()));
  }

  /**
   * The writing loop, run by the thread that holds the turn ({@code running}); returns when
   * nothing flushed is left, after handing the turn to the io task if a batch could block
   * ({@code mayBlock} false), or on failure.
   */
  private void write(boolean mayBlock) {
    OutputStream out;
    while (true) {
      byte[] array;
      int offset;
      int length;
      int flowBytes = 0;
      boolean fin;
      synchronized (lock) {
        if (!writableLocked()) {
          running = false;
          return;
        }
        int batch = batchLength();
        if (!mayBlock && (buffer == null || batch > buffer.free())) {
          SharedExecutors.io().execute(() -> write(true)); // keeps the turn
          return;
        }
        out = stream.getOutputStream();
        Item first = queue.poll();
        if (first == null) {
          array = null;
          offset = 0;
          length = 0;
        } else if (batch == first.length) {
          array = first.array;
          offset = first.offset;
          length = first.length;
          flowBytes = first.flowBytes;
        } else {
          // Several small frames: one write, one packet where they fit.
          array = new byte[batch];
          System.arraycopy(first.array, first.offset, array, 0, first.length);
          flowBytes = first.flowBytes;
          int pos = first.length;
          while (pos < batch) {
            Item i = queue.poll();
            System.arraycopy(i.array, i.offset, array, pos, i.length);
            pos += i.length;
            flowBytes += i.flowBytes;
          }
          offset = 0;
          length = batch;
        }
        if (queue.isEmpty()) {
          flushPending = false;
        }
        fin = finQueued && queue.isEmpty();
        if (fin) {
          done = true;
          finTaken = true;
        }
      }
      try {
        if (length > 0) {
          out.write(array, offset, length);
        }
        if (fin) {
          out.close();
        }
      } catch (IOException | RuntimeException e) {
        synchronized (lock) {
          done = true;
          queue.clear();
          running = false;
        }
        if (mayBlock) {
          Thread.interrupted(); // kwik interrupts blocked writers on reset
        }
        log.log(Level.FINEST, "stream write failed", e);
        callback.writeFailed(e instanceof IOException ? (IOException) e : new IOException(e));
        return;
      }
      if (flowBytes > 0) {
        callback.written(flowBytes);
      }
      if (fin) {
        synchronized (lock) {
          running = false;
        }
        callback.finished();
        return;
      }
    }
  }

  /** The length of the next write: the queue's first frames, up to the coalescing limit. */
  @GuardedBy("lock")
  private int batchLength() {
    int total = 0;
    for (Item i : queue) {
      if (total > 0 && total + i.length > COALESCE_LIMIT) {
        break;
      }
      total += i.length;
      if (total >= COALESCE_LIMIT) {
        break;
      }
    }
    return total;
  }

  @Override
  public String toString() {
    synchronized (lock) {
      return "writer[queued " + queue.size() + (running ? ", running" : "")
          + (flushPending ? ", flush" : "") + (finQueued ? ", fin queued" : "")
          + (finTaken ? ", fin taken" : "") + (done ? ", done" : "")
          + (stream == null ? ", unattached" : "") + "]";
    }
  }
}
