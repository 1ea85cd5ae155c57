package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayDeque;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.QuicStream;

/**
 * The outbound half of one call stream. gRPC threads enqueue frames and never block; one task
 * on {@link SharedExecutors#io()} drains the queue into kwik, coalescing whatever is queued into
 * one write (HEADERS, DATA and FIN of a unary call leave as one write). kwik's write blocks
 * while QUIC flow control holds the data back; {@link Callback#written} reports bytes only
 * once kwik has taken them, which drives gRPC's {@code isReady()}.
 *
 * <p>Thread-safe. Writes to kwik happen on one task at a time, as kwik requires.
 */
final class StreamWriter implements Runnable {
  private static final Logger log = Logger.getLogger(StreamWriter.class.getName());
  private static final int COALESCE_LIMIT = 64 * 1024;

  /** Reports progress; called on the writer task, outside the lock. */
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
  @GuardedBy("lock") private boolean running;
  @GuardedBy("lock") private boolean finQueued;
  @GuardedBy("lock") private boolean done;
  /** The last batch, ending with FIN, is being (or has been) handed to kwik. */
  @GuardedBy("lock") private boolean finTaken;
  /** A reset asked for before the stream was attached; sent by attach. */
  @GuardedBy("lock") private long pendingResetCode = -1;

  StreamWriter(Callback callback) {
    this.callback = callback;
  }

  /** The stream is open: start writing what is queued (or reset it, if reset came first). */
  void attach(QuicStream stream) {
    long resetCode;
    synchronized (lock) {
      this.stream = stream;
      if (!done) {
        scheduleLocked();
        return;
      }
      resetCode = pendingResetCode;
    }
    if (resetCode >= 0) {
      stream.resetStream(resetCode);
    }
  }

  /** Queues a control or HEADERS/TRAILERS frame. */
  void enqueue(byte[] frame) {
    enqueue(new Item(frame, 0, frame.length, 0));
  }

  /** Queues a DATA frame. */
  void enqueue(DataFrameBuffer buffer) {
    int start = buffer.seal();
    enqueue(new Item(buffer.array(), start, buffer.end() - start, buffer.readableBytes()));
  }

  private void enqueue(Item item) {
    synchronized (lock) {
      if (done || finQueued) {
        return;
      }
      queue.add(item);
      scheduleLocked();
    }
  }

  /**
   * Queues the end of the stream (QUIC FIN) after everything queued so far. Returns false if
   * the writer had already ended (reset or failed): no {@link Callback#finished} will follow.
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
      if (!finQueued) {
        finQueued = true;
        scheduleLocked();
      }
      return true;
    }
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

  @GuardedBy("lock")
  private void scheduleLocked() {
    if (!running && stream != null && (!queue.isEmpty() || finQueued)) {
      running = true;
      SharedExecutors.io().execute(this);
    }
  }

  @Override
  public void run() {
    OutputStream out;
    while (true) {
      byte[] array;
      int offset;
      int length;
      int flowBytes = 0;
      boolean fin;
      synchronized (lock) {
        if (done || (queue.isEmpty() && !finQueued)) {
          running = false;
          return;
        }
        out = stream.getOutputStream();
        Item first = queue.poll();
        if (first == null) {
          array = null;
          offset = 0;
          length = 0;
        } else if (queue.isEmpty() || first.length >= COALESCE_LIMIT) {
          array = first.array;
          offset = first.offset;
          length = first.length;
          flowBytes = first.flowBytes;
        } else {
          // Several small frames: one write, one packet where they fit.
          int total = first.length;
          for (Item i : queue) {
            if (total + i.length > COALESCE_LIMIT) {
              break;
            }
            total += i.length;
          }
          array = new byte[total];
          System.arraycopy(first.array, first.offset, array, 0, first.length);
          flowBytes = first.flowBytes;
          int pos = first.length;
          while (!queue.isEmpty() && pos + queue.peek().length <= total) {
            Item i = queue.poll();
            System.arraycopy(i.array, i.offset, array, pos, i.length);
            pos += i.length;
            flowBytes += i.flowBytes;
          }
          offset = 0;
          length = total;
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
        Thread.interrupted(); // kwik interrupts blocked writers on reset
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
}
