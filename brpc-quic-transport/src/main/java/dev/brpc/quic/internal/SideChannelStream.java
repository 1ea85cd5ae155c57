package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.SideChannel;
import dev.brpc.quic.engine.EngineStream;
import dev.brpc.quic.engine.StreamException;
import dev.brpc.quic.engine.StreamHandler;
import io.grpc.Status;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.util.concurrent.CompletableFuture;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One side channel (PROTOCOL.md section 7): a bidirectional QUIC stream of raw bytes beside a
 * call. The opener sent {@code SIDE_CHANNEL(call stream id)} first and waits for the
 * acceptor's empty {@code SIDE_CHANNEL}; after those, every byte is the application's.
 *
 * <p>Reads and writes go straight to the engine's stream: a read takes what the engine holds
 * (crediting the peer, so flow control is the backpressure), a write hands the engine what its
 * send buffer takes. Nothing is buffered here beyond the few bytes the first frame's reader
 * had read ahead.
 *
 * <p>Threading: the application's threads read and write and block in doing so, waiting on
 * this object's monitor; the engine's threads only signal it ({@link #readable}, {@link
 * #writable}) and never block, apart from reading the opener's two-byte answer. Reads are
 * serialized by {@code readLock}, writes by {@code writeLock}, as the engine requires.
 */
final class SideChannelStream implements SideChannel, StreamHandler, Connection.Stream {
  private static final Logger log = Logger.getLogger(SideChannelStream.class.getName());
  /** The acceptor's answer: an empty SIDE_CHANNEL frame. */
  static final byte[] ACCEPTED = {Wire.FRAME_SIDE_CHANNEL, 0};

  private final Connection connection;
  private final EngineStream stream;
  private final SideChannelSlot slot;
  /** Completes when the acceptor's answer is read (opener), at once (acceptor). */
  final CompletableFuture<Void> accepted = new CompletableFuture<>();
  private final Object readLock = new Object();
  private final java.util.concurrent.locks.ReentrantLock writeLock =
      new java.util.concurrent.locks.ReentrantLock();
  private final Input input = new Input();
  private final Output output = new Output();
  /** The opener's answer so far, read on engine threads (serialized by itself). */
  private final byte[] answer = new byte[2];
  private int answerRead;

  private final Object lock = new Object();
  @GuardedBy("lock") private byte[] leftover;
  @GuardedBy("lock") private int leftoverPos;
  @GuardedBy("lock") private long readableEvents;
  @GuardedBy("lock") private long writableEvents;
  @GuardedBy("lock") private IOException inputFailure;
  @GuardedBy("lock") private IOException outputFailure;
  @GuardedBy("lock") private boolean inputDone;
  @GuardedBy("lock") private boolean outputDone;
  @GuardedBy("lock") private boolean released;

  /**
   * @param leftover raw bytes already read past the opener's SIDE_CHANNEL frame (acceptor);
   *     null for the opener, which reads the acceptor's answer first
   */
  SideChannelStream(Connection connection, EngineStream stream, SideChannelSlot slot,
      byte[] leftover) {
    this.connection = connection;
    this.stream = stream;
    this.slot = slot;
    this.leftover = leftover;
    if (leftover != null) {
      accepted.complete(null);
    }
  }

  long id() {
    return stream.id();
  }

  /** Whether this side has finished writing: its output is closed, reset or failed. */
  boolean outputDone() {
    synchronized (lock) {
      return outputDone;
    }
  }

  @Override
  public InputStream input() {
    return input;
  }

  @Override
  public OutputStream output() {
    return output;
  }

  @Override
  public void close() {
    closeInput();
    closeOutput();
  }

  /** Stops reading: the peer's further writes fail. */
  private void closeInput() {
    boolean stop;
    synchronized (lock) {
      stop = !inputDone;
      inputDone = true;
      lock.notifyAll();
    }
    if (stop) {
      stream.stopSending(Wire.NO_ERROR);
    }
    release();
  }

  @Override
  public void cancel() {
    abort(Status.CANCELLED.withDescription("side channel cancelled"),
        Wire.errorCode(Status.CANCELLED));
  }

  /**
   * Ends both directions: resets the stream with {@code code} (none if negative: the
   * connection is gone); every blocked and later read or write fails with {@code status}.
   */
  void abort(Status status, long code) {
    IOException failure = new IOException("side channel closed: " + status.getCode()
        + (status.getDescription() == null ? "" : ": " + status.getDescription()),
        status.getCause());
    boolean stopInput;
    boolean resetOutput;
    synchronized (lock) {
      stopInput = !inputDone;
      resetOutput = !outputDone;
      if (stopInput) {
        inputDone = true;
        inputFailure = failure;
      }
      if (resetOutput) {
        outputDone = true;
        outputFailure = failure;
      }
      lock.notifyAll();
    }
    if (code >= 0) {
      if (resetOutput) {
        stream.reset(code);
      }
      if (stopInput) {
        stream.stopSending(code);
      }
    }
    accepted.completeExceptionally(failure);
    release();
  }

  /** The call ended OK: an output still open is reset (its bytes would be incomplete). */
  void callEndedOk() {
    synchronized (lock) {
      if (outputDone) {
        return;
      }
      outputDone = true;
      outputFailure = new IOException("side channel closed: its call ended before the output"
          + " was closed");
      lock.notifyAll();
    }
    stream.reset(Wire.errorCode(Status.CANCELLED));
    release();
  }

  @Override
  public void connectionClosed(Status status) {
    abort(status, -1);
  }

  private void release() {
    synchronized (lock) {
      if (released || !(inputDone && outputDone)) {
        return;
      }
      released = true;
    }
    connection.unregister(this);
    slot.released(this);
  }

  // ---------------------------------------------------------------------------------------
  // Engine events: signal, never block.

  @Override
  public void readable() {
    if (!accepted.isDone()) {
      readAnswer();
    }
    synchronized (lock) {
      readableEvents++;
      lock.notifyAll();
    }
  }

  @Override
  public void writable() {
    synchronized (lock) {
      writableEvents++;
      lock.notifyAll();
    }
  }

  @Override
  public void writeFailed(IOException cause) {
    synchronized (lock) {
      if (!outputDone) {
        outputDone = true;
        outputFailure = new IOException("side channel output failed: the peer stopped reading"
            + " or the connection closed", cause);
      }
      lock.notifyAll();
    }
    release();
  }

  /**
   * The opener reads the acceptor's answer: two bytes, on an engine thread (the application
   * does not read before {@link SideChannelSlot#open} returns, which waits for them).
   */
  private void readAnswer() {
    synchronized (answer) {
      if (accepted.isDone()) {
        return;
      }
      try {
        while (answerRead < answer.length) {
          int n = stream.read(answer, answerRead, answer.length - answerRead);
          if (n == 0) {
            return;
          }
          if (n < 0) {
            refused(null);
            return;
          }
          connection.progress();
          answerRead += n;
        }
      } catch (IOException e) {
        refused(e);
        return;
      }
      if (answer[0] != ACCEPTED[0] || answer[1] != ACCEPTED[1]) {
        abort(Status.INTERNAL.withDescription("protocol error: the peer answered a side"
            + " channel with bytes 0x" + Integer.toHexString(answer[0] & 0xff) + " 0x"
            + Integer.toHexString(answer[1] & 0xff)), Wire.PROTOCOL_ERROR);
        return;
      }
      accepted.complete(null);
    }
  }

  private void refused(IOException cause) {
    Status closed = connection.closedStatus();
    abort(closed != null ? closed : Status.NOT_FOUND.withDescription("the peer refused the side"
        + " channel: its call has ended, or was made without SideChannels.CALL_OPTION")
        .withCause(cause), Wire.errorCode(Status.CANCELLED));
  }

  // ---------------------------------------------------------------------------------------
  // The application's side: may block.

  private int read(byte[] b, int off, int len) throws IOException {
    java.util.Objects.checkFromIndexSize(off, len, b.length);
    if (len == 0) {
      return 0;
    }
    synchronized (readLock) {
      while (true) {
        long seen;
        synchronized (lock) {
          if (inputFailure != null) {
            throw new IOException(inputFailure.getMessage(), inputFailure);
          }
          if (inputDone) {
            return -1;
          }
          if (leftover != null) {
            int n = Math.min(len, leftover.length - leftoverPos);
            System.arraycopy(leftover, leftoverPos, b, off, n);
            leftoverPos += n;
            if (leftoverPos == leftover.length) {
              leftover = null;
            }
            if (n > 0) {
              return n;
            }
          }
          seen = readableEvents;
        }
        int n;
        try {
          n = stream.read(b, off, len);
        } catch (StreamException e) {
          throw inputFailed(e.kind() == StreamException.Kind.RESET
              ? "side channel reset by the peer" : "side channel input failed", e);
        }
        if (n != 0) {
          connection.progress();
        }
        if (n > 0) {
          return n;
        }
        if (n < 0) {
          synchronized (lock) {
            inputDone = true;
          }
          release();
          return -1;
        }
        synchronized (lock) {
          while (readableEvents == seen && inputFailure == null && !inputDone) {
            await();
          }
        }
      }
    }
  }

  private IOException inputFailed(String what, IOException cause) {
    Status closed = connection.closedStatus();
    IOException e = new IOException(what + (closed == null ? ""
        : ": connection closed: " + closed.getCode() + ": " + closed.getDescription()), cause);
    boolean stop;
    synchronized (lock) {
      stop = !inputDone;
      if (inputFailure == null) {
        inputFailure = e;
      }
      inputDone = true;
      lock.notifyAll();
    }
    if (stop) {
      stream.stopSending(Wire.NO_ERROR); // lets the engine finish its receive side
    }
    release();
    return e;
  }

  private void write(byte[] b, int off, int len) throws IOException {
    java.util.Objects.checkFromIndexSize(off, len, b.length);
    writeLock.lock();
    try {
      while (len > 0) {
        long seen;
        synchronized (lock) {
          if (outputFailure != null) {
            throw new IOException(outputFailure.getMessage(), outputFailure);
          }
          if (outputDone) {
            throw new IOException("side channel output is closed");
          }
          seen = writableEvents;
        }
        int room = stream.writableBytes();
        if (room > 0) {
          int n = Math.min(room, len);
          try {
            stream.write(b, off, n, false);
          } catch (IOException e) {
            throw outputFailed(e);
          }
          off += n;
          len -= n;
          continue;
        }
        if (stream.requestWritable()) {
          continue;
        }
        synchronized (lock) {
          while (writableEvents == seen && outputFailure == null && !outputDone) {
            await();
          }
        }
      }
    } finally {
      writeLock.unlock();
    }
  }

  private IOException outputFailed(IOException cause) {
    Status closed = connection.closedStatus();
    IOException e = new IOException("side channel output failed: " + (closed != null
        ? "connection closed: " + closed.getCode() + ": " + closed.getDescription()
        : "the peer stopped reading or cancelled the channel"), cause);
    synchronized (lock) {
      if (outputFailure == null) {
        outputFailure = e;
      }
      outputDone = true;
      lock.notifyAll();
    }
    release();
    return e;
  }

  /**
   * Ends the output without blocking: a FIN after what was written; but if a write is under
   * way on another thread (waiting for the peer's credit, say), a reset, since the bytes it was
   * writing would end cut short, and a FIN would make the peer take them as complete. That
   * writer wakes and fails.
   */
  private void closeOutput() {
    synchronized (lock) {
      if (outputDone) {
        return;
      }
      outputDone = true;
      lock.notifyAll();
    }
    if (writeLock.tryLock()) {
      try {
        stream.write(new byte[0], 0, 0, true); // a FIN alone is always taken
      } catch (IOException | RuntimeException e) {
        log.log(Level.FINEST, "side channel FIN not sent", e);
      } finally {
        writeLock.unlock();
      }
    } else {
      stream.reset(Wire.errorCode(Status.CANCELLED));
    }
    release();
  }

  @GuardedBy("lock")
  private void await() throws InterruptedIOException {
    try {
      lock.wait();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting on a side channel");
    }
  }

  private final class Input extends InputStream {
    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      int n = SideChannelStream.this.read(one, 0, 1);
      return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      return SideChannelStream.this.read(b, off, len);
    }

    @Override
    public int available() {
      synchronized (lock) {
        if (inputDone) {
          return 0;
        }
        if (leftover != null) {
          return leftover.length - leftoverPos;
        }
      }
      return stream.available();
    }

    /** Stops reading: the peer's further writes fail. */
    @Override
    public void close() {
      closeInput();
    }
  }

  private final class Output extends OutputStream {
    @Override
    public void write(int b) throws IOException {
      SideChannelStream.this.write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      SideChannelStream.this.write(b, off, len);
    }

    /** Ends the output: the peer reads -1 after the bytes written. */
    @Override
    public void close() {
      closeOutput();
    }
  }

  @Override
  public String toString() {
    synchronized (lock) {
      return "side channel " + stream.id() + (inputDone ? " in-done" : "")
          + (outputDone ? " out-done" : "") + (released ? " released" : "");
    }
  }
}
