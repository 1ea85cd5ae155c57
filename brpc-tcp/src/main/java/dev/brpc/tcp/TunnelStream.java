package dev.brpc.tcp;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.engine.EngineStream;
import dev.brpc.quic.engine.StreamException;
import dev.brpc.quic.engine.StreamHandler;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * One stream of a tunnel connection: a QUIC stream's two directions (bytes, FIN, RESET_STREAM,
 * STOP_SENDING) as frames on one gRPC call (PROTOCOL.md, section 8). The call's own flow control
 * is the stream's: at most {@code window} bytes are received ahead of {@link #read}, and
 * {@link #writableBytes} is 0 while grpc's send buffer is full.
 *
 * <p>Thread-safe. State changes under the stream's lock; the handler is called after it is
 * released, so a handler may call back in from any thread.
 */
final class TunnelStream implements EngineStream {
  private final TunnelConnection connection;
  private final long id;
  private final boolean bidirectional;
  private final boolean local;
  private final long window;
  private final Object lock = new Object();
  @GuardedBy("lock") private Pipe pipe;
  @GuardedBy("lock") private StreamHandler handler;
  @GuardedBy("lock") private final List<byte[]> pending = new ArrayList<>();
  @GuardedBy("lock") private int pendingBytes;
  /** What {@link #write} takes while grpc is not ready, until its next onReady. */
  private static final int UNREADY_BUDGET = 16 * 1024;
  @GuardedBy("lock") private int unreadyBytes;
  // receiving
  @GuardedBy("lock") private final ArrayDeque<byte[]> chunks = new ArrayDeque<>();
  @GuardedBy("lock") private int headOffset;
  @GuardedBy("lock") private long buffered;
  @GuardedBy("lock") private int outstanding;
  @GuardedBy("lock") private boolean finReceived;
  @GuardedBy("lock") private long resetReceived = -1;
  @GuardedBy("lock") private boolean stopped;
  // sending
  @GuardedBy("lock") private boolean finSent;
  @GuardedBy("lock") private boolean resetSent;
  @GuardedBy("lock") private long stopReceived = -1;
  @GuardedBy("lock") private boolean wantWritable;
  // the call
  @GuardedBy("lock") private IOException failure;
  @GuardedBy("lock") private boolean finished;
  @GuardedBy("lock") private boolean retired;

  TunnelStream(TunnelConnection connection, long id, boolean local, long window) {
    this.connection = connection;
    this.id = id;
    this.bidirectional = (id & 0x2) == 0;
    this.local = local;
    this.window = Math.max(window, Tunnel.CHUNK);
  }

  @Override
  public long id() {
    return id;
  }

  @Override
  public boolean isBidirectional() {
    return bidirectional;
  }

  private boolean hasReceiveSide() {
    return bidirectional || !local;
  }

  private boolean hasSendSide() {
    return bidirectional || local;
  }

  @GuardedBy("lock")
  private boolean receiveDone() {
    return !hasReceiveSide() || finReceived || resetReceived >= 0 || failure != null;
  }

  @GuardedBy("lock")
  private boolean sendDone() {
    return !hasSendSide() || finSent || resetSent || failure != null;
  }

  /** The stream's call is there: frames flow from now on. */
  void attach(Pipe p) {
    boolean notifyWritable;
    p.bind(this);
    synchronized (lock) {
      pipe = p;
      for (byte[] f : pending) {
        p.send(f);
      }
      pending.clear();
      requestMore();
      notifyWritable = wantWritable && handler != null;
      wantWritable = false;
      finishIfDone();
    }
    if (notifyWritable) {
      handler().writable();
    }
  }

  private StreamHandler handler() {
    synchronized (lock) {
      return handler;
    }
  }

  @Override
  public void start(StreamHandler h) {
    boolean readable;
    synchronized (lock) {
      handler = h;
      readable = !chunks.isEmpty() || finReceived || resetReceived >= 0 || failure != null;
    }
    if (readable) {
      h.readable();
    }
  }

  @GuardedBy("lock")
  private void requestMore() {
    if (pipe == null || finished) {
      return;
    }
    // At least one frame is always asked for: RESET and STOP arrive on a stream whatever it
    // holds; data only while the window has room.
    while (outstanding == 0
        || (outstanding < 8 && buffered + (long) outstanding * Tunnel.CHUNK < window)) {
      outstanding++;
      pipe.request(1);
    }
  }

  /** A frame from the peer, on grpc's thread. */
  void onFrame(byte[] f) {
    boolean readable = false;
    boolean writeFailed = false;
    boolean writable = false;
    long code = -1;
    synchronized (lock) {
      outstanding--;
      if (f.length == 0) {
        throw new Tunnel.Malformed("empty frame");
      }
      switch (f[0]) {
        case Tunnel.DATA, Tunnel.DATA_FIN -> {
          if (!hasReceiveSide() || finReceived || resetReceived >= 0) {
            throw new Tunnel.Malformed("DATA after the stream's end");
          }
          if (f.length > 1 && !stopped) {
            chunks.add(f);
            buffered += f.length - 1;
            if (chunks.size() == 1) {
              headOffset = 1;
            }
          }
          finReceived = f[0] == Tunnel.DATA_FIN;
          readable = !stopped || finReceived;
        }
        case Tunnel.RESET -> {
          Tunnel.Reader r = new Tunnel.Reader(f, 1);
          long c = r.varint();
          r.end();
          if (hasReceiveSide() && !finReceived && resetReceived < 0) {
            resetReceived = c;
            chunks.clear();
            buffered = 0;
            readable = true;
          }
        }
        case Tunnel.STOP -> {
          Tunnel.Reader r = new Tunnel.Reader(f, 1);
          code = r.varint();
          r.end();
          if (hasSendSide() && stopReceived < 0) {
            stopReceived = code;
            if (!finSent && !resetSent) {
              // As a QUIC stack answers STOP_SENDING: RESET_STREAM with the same code.
              resetSent = true;
              send(Tunnel.frame(Tunnel.RESET, code));
              writeFailed = true;
              writable = wantWritable;
              wantWritable = false;
            }
          }
        }
        default -> throw new Tunnel.Malformed("unknown stream frame type " + f[0]);
      }
      requestMore();
      finishIfDone();
      if (handler == null) {
        return;
      }
    }
    StreamHandler h = handler();
    if (writeFailed) {
      h.writeFailed(new StreamException(StreamException.Kind.RESET, code,
          "the peer stopped the stream (STOP_SENDING " + code + ")"));
    }
    if (writable) {
      h.writable();
    }
    if (readable) {
      h.readable();
    }
  }

  /** grpc's send buffer has room again. */
  void onReady() {
    boolean notify;
    synchronized (lock) {
      unreadyBytes = 0;
      notify = wantWritable && handler != null && pipe != null && pipe.isReady();
      if (notify) {
        wantWritable = false;
      }
    }
    if (notify) {
      handler().writable();
    }
  }

  /** The stream's call ended: normally after both ends were done, else a failure. */
  void onCallClosed(String why) {
    StreamHandler h;
    boolean notify;
    synchronized (lock) {
      finished = true;
      notify = !(receiveDone() && sendDone());
      if (notify) {
        failure = new StreamException(StreamException.Kind.CONNECTION_CLOSED, -1,
            "the stream's call ended: " + why);
        chunks.clear();
        buffered = 0;
      }
      h = handler;
    }
    connection.retired(this);
    if (notify && h != null) {
      h.writeFailed(failure());
      h.readable();
      h.writable();
    }
  }

  private IOException failure() {
    synchronized (lock) {
      return failure;
    }
  }

  /**
   * The connection closed: everything not done fails, and the call is ended: at once, or
   * ({@code lingerSeconds > 0}, after this side sent CLOSE) once the peer has had time to read
   * the CLOSE, so that it learns why before its streams fail (the calls are HTTP/2 streams of
   * their own, and their ends could overtake the CLOSE). The peer ends them itself on CLOSE.
   */
  void connectionClosed(String why, long lingerSeconds) {
    Pipe p;
    StreamHandler h;
    synchronized (lock) {
      if (finished) {
        return;
      }
      finished = true;
      if (failure == null) {
        failure = new StreamException(StreamException.Kind.CONNECTION_CLOSED, -1,
            "connection closed: " + why);
      }
      chunks.clear();
      buffered = 0;
      p = pipe;
      h = handler;
    }
    if (p != null) {
      if (lingerSeconds > 0) {
        TcpEngine.TIMER.schedule(() -> p.abort("connection closed: " + why), lingerSeconds,
            java.util.concurrent.TimeUnit.SECONDS);
      } else {
        p.abort("connection closed: " + why);
      }
    }
    if (h != null) {
      h.readable();
      h.writable();
    }
  }

  boolean markRetired() {
    synchronized (lock) {
      boolean first = !retired;
      retired = true;
      return first;
    }
  }

  boolean isLocal() {
    return local;
  }

  @GuardedBy("lock")
  private void finishIfDone() {
    if (!finished && pipe != null && receiveDone() && sendDone() && failure == null) {
      pipe.finish();
    }
  }

  @GuardedBy("lock")
  private void send(byte[] frame) {
    if (pipe != null) {
      pipe.send(frame);
    } else {
      pending.add(frame);
    }
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    synchronized (lock) {
      if (stopped) {
        if (resetReceived >= 0) { // the peer's reset is the first cause, whichever came first
          throw new StreamException(StreamException.Kind.RESET, resetReceived,
              "the peer reset the stream (RESET_STREAM " + resetReceived + ")");
        }
        throw new StreamException(StreamException.Kind.LOCAL, -1, "this side stopped reading");
      }
      if (!chunks.isEmpty()) {
        int n = 0;
        while (n < len && !chunks.isEmpty()) {
          byte[] head = chunks.peek();
          int k = Math.min(len - n, head.length - headOffset);
          System.arraycopy(head, headOffset, b, off + n, k);
          n += k;
          headOffset += k;
          if (headOffset == head.length) {
            chunks.poll();
            headOffset = 1;
          }
        }
        buffered -= n;
        requestMore();
        return n;
      }
      if (resetReceived >= 0) {
        throw new StreamException(StreamException.Kind.RESET, resetReceived,
            "the peer reset the stream (RESET_STREAM " + resetReceived + ")");
      }
      if (finReceived) {
        return -1;
      }
      if (failure != null) {
        throw failure;
      }
      return 0;
    }
  }

  @Override
  public int available() {
    synchronized (lock) {
      return (int) Math.min(Integer.MAX_VALUE, buffered);
    }
  }

  @Override
  public void stopSending(long code) {
    synchronized (lock) {
      if (stopped || !hasReceiveSide()) {
        return;
      }
      stopped = true;
      chunks.clear();
      buffered = 0;
      if (!receiveDone()) {
        send(Tunnel.frame(Tunnel.STOP, code));
      }
      requestMore();
    }
  }

  @Override
  public int writableBytes() {
    synchronized (lock) {
      if (failure != null || stopReceived >= 0 || resetSent || finSent || !hasSendSide()) {
        return Tunnel.CHUNK; // a write fails at once, and says why
      }
      if (pipe == null) {
        return Tunnel.CHUNK - pendingBytes; // before the peer's call is there: a little
      }
      // While grpc's buffer is over its threshold (or its stream not yet created: a fresh
      // call is not ready), a little more is taken, so a fresh stream takes its first frame;
      // onReady renews it.
      return pipe.isReady() ? Tunnel.CHUNK : Math.max(0, UNREADY_BUDGET - unreadyBytes);
    }
  }

  @Override
  public boolean requestWritable() {
    synchronized (lock) {
      if (writableBytes() > 0) {
        return true;
      }
      wantWritable = true;
      return false;
    }
  }

  @Override
  public void write(byte[] b, int off, int len, boolean fin) throws IOException {
    synchronized (lock) {
      if (stopReceived >= 0) {
        throw new StreamException(StreamException.Kind.RESET, stopReceived,
            "the peer stopped the stream (STOP_SENDING " + stopReceived + ")");
      }
      if (failure != null) {
        throw failure;
      }
      if (resetSent || finSent || !hasSendSide()) {
        throw new StreamException(StreamException.Kind.LOCAL, -1,
            "the stream's sending side is closed");
      }
      if (len > writableBytes()) {
        throw new IllegalStateException("write of " + len + " bytes exceeds writableBytes()");
      }
      if (pipe == null) {
        pendingBytes += len;
      } else if (!pipe.isReady()) {
        unreadyBytes += len;
      }
      byte[] f = new byte[len + 1];
      f[0] = fin ? Tunnel.DATA_FIN : Tunnel.DATA;
      System.arraycopy(b, off, f, 1, len);
      send(f);
      finSent = fin;
      finishIfDone();
    }
  }

  @Override
  public void reset(long code) {
    synchronized (lock) {
      if (sendDone()) {
        return;
      }
      resetSent = true;
      send(Tunnel.frame(Tunnel.RESET, code));
      finishIfDone();
    }
  }

  @Override
  public String toString() {
    synchronized (lock) {
      return "tunnel stream " + id + (pipe == null ? " unattached" : "")
          + " buffered=" + buffered + (finReceived ? " fin-in" : "")
          + (resetReceived >= 0 ? " reset-in=" + resetReceived : "")
          + (stopped ? " stopped" : "") + (finSent ? " fin-out" : "")
          + (resetSent ? " reset-out" : "") + (stopReceived >= 0 ? " stop-in" : "")
          + (failure != null ? " failed" : "") + (finished ? " finished" : "");
    }
  }
}
