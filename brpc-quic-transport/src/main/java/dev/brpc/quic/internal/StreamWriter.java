package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.engine.EngineStream;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The outbound half of one stream. gRPC threads enqueue frames and never block. At a flush
 * (gRPC's own flush points, and always for FIN), whatever is queued is coalesced into one
 * write (HEADERS, DATA and TRAILERS of a unary response leave as one write, usually one packet).
 *
 * <p><b>Who writes.</b> The flushing thread writes at once as much as the engine's send buffer
 * takes ({@link EngineStream#writableBytes}); what does not fit waits here, and the engine's
 * {@link #writable} callback writes the rest as room frees up. Nothing blocks, and what waits
 * here is bounded by gRPC's own flow control ({@code isReady()}): {@link Callback#written}
 * reports a DATA frame's bytes only once the engine has taken all of it. So a unary call hands
 * its request and its response to the engine without a thread hand-off.
 *
 * <p>Thread-safe. One thread writes at a time (the one holding the turn, {@code running}), as
 * the engine requires.
 */
final class StreamWriter {
  private static final Logger log = Logger.getLogger(StreamWriter.class.getName());
  private static final int COALESCE_LIMIT = 64 * 1024;

  /** Reports progress; called on the writing thread, outside the lock. */
  interface Callback {
    /** {@code flowBytes} DATA payload bytes were taken by the engine. */
    void written(int flowBytes);

    /** Writing failed; nothing more will be written. */
    void writeFailed(IOException e);

    /** Everything queued, including FIN, was handed to the engine. */
    void finished();
  }

  private static final class Item {
    final byte[] array;
    /** Advances as a write takes part of the item. */
    int offset;
    int length;
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
  @GuardedBy("lock") private EngineStream stream;
  /** A thread is writing; others only queue. */
  @GuardedBy("lock") private boolean running;
  /** A flush was asked for and the queue has not been empty since. */
  @GuardedBy("lock") private boolean flushPending;
  @GuardedBy("lock") private boolean finQueued;
  @GuardedBy("lock") private boolean done;
  /** The last batch, ending with FIN, is being (or has been) handed to the engine. */
  @GuardedBy("lock") private boolean finTaken;
  /** A reset asked for before the stream was attached; sent by attach. */
  @GuardedBy("lock") private long pendingResetCode = -1;

  StreamWriter(Callback callback) {
    this.callback = callback;
  }

  /**
   * The stream is open (and started, with {@link #writable} wired to its handler): write what
   * is queued and flushed, or reset it, if reset came first.
   */
  void attach(EngineStream stream) {
    long resetCode;
    synchronized (lock) {
      this.stream = stream;
      resetCode = done ? pendingResetCode : -1;
    }
    if (resetCode >= 0) {
      stream.reset(resetCode);
    } else {
      drain();
    }
  }

  /** The engine has room again ({@link dev.brpc.quic.engine.StreamHandler#writable}). */
  void writable() {
    drain();
  }

  /** A write the engine had taken failed ({@link dev.brpc.quic.engine.StreamHandler#writeFailed}). */
  void failedLater(IOException e) {
    synchronized (lock) {
      if (done) {
        return; // reset, failed, or finished: the failed write was handed off already
      }
      done = true;
      queue.clear();
    }
    callback.writeFailed(e);
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
    EngineStream s;
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
      s.reset(code); // a no-op after FIN was written, as QUIC allows
    }
    return true;
  }

  /** Takes the turn and writes what is flushed, unless a writer is running. */
  private void drain() {
    EngineStream s;
    synchronized (lock) {
      if (running || !writableLocked()) {
        return;
      }
      running = true;
      s = stream;
    }
    write(s);
  }

  @GuardedBy("lock")
  private boolean writableLocked() {
    return !done && stream != null && (finQueued || (flushPending && !queue.isEmpty()));
  }

  /**
   * The writing loop, run by the thread that holds the turn; returns when nothing flushed is
   * left, when the engine has no room (its {@link #writable} callback takes the turn again),
   * or on failure.
   */
  private void write(EngineStream s) {
    while (true) {
      int room = s.writableBytes();
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
        if (room <= 0 && !queue.isEmpty()) {
          running = false;
          array = null;
          offset = 0;
          length = 0;
          fin = false;
        } else {
          Item first = queue.peek();
          int budget = Math.min(room, COALESCE_LIMIT);
          if (first == null) {
            array = null;
            offset = 0;
            length = 0;
          } else if (first.length > budget) {
            // Part of a large frame: as much as fits. Its flow bytes count when it is all out.
            array = first.array;
            offset = first.offset;
            length = budget;
            first.offset += budget;
            first.length -= budget;
          } else {
            int batch = batchLength(budget);
            queue.poll();
            if (batch == first.length) {
              array = first.array;
              offset = first.offset;
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
            }
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
      }
      if (array == null && !fin) {
        // No room: the engine calls writable() once there is; or there is room again already.
        if (s.requestWritable()) {
          drain();
        }
        return;
      }
      try {
        s.write(array == null ? new byte[0] : array, offset, length, fin);
      } catch (IOException | RuntimeException e) {
        synchronized (lock) {
          done = true;
          queue.clear();
          running = false;
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

  /** The length of the next write: the queue's first whole frames, up to {@code budget}. */
  @GuardedBy("lock")
  private int batchLength(int budget) {
    int total = 0;
    for (Item i : queue) {
      if (total > 0 && total + i.length > budget) {
        break;
      }
      total += i.length;
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
