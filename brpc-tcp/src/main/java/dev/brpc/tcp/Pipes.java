package dev.brpc.tcp;

import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.Status;

/**
 * The two {@link Pipe}s: over a client call (the dialer's side) and over a server call.
 *
 * <p>Thread-safe: each serializes its call's operations on its own lock.
 */
final class Pipes {
  private Pipes() {}

  /** A pipe over the dialer's call; frames the call receives go to {@link #stream}. */
  static final class Client implements Pipe {
    final ClientCall<byte[], byte[]> call;
    volatile TunnelStream stream;
    private boolean ended;

    Client(ClientCall<byte[], byte[]> call) {
      this.call = call;
    }

    @Override
    public synchronized void send(byte[] frame) {
      if (!ended) {
        call.sendMessage(frame);
      }
    }

    @Override
    public synchronized boolean isReady() {
      return !ended && call.isReady();
    }

    @Override
    public void request(int n) {
      call.request(n); // thread-safe on a ClientCall
    }

    @Override
    public synchronized void finish() {
      if (!ended) {
        ended = true;
        call.halfClose();
      }
    }

    @Override
    public void abort(String why) {
      synchronized (this) {
        ended = true;
      }
      call.cancel(why, null);
    }

    @Override
    public void bind(TunnelStream s) {
      stream = s;
    }
  }

  /** A pipe over a server call; frames the call receives go to {@link #stream}. */
  static final class Server implements Pipe {
    final ServerCall<byte[], byte[]> call;
    volatile TunnelStream stream;
    private boolean headersSent;
    private boolean closed;

    Server(ServerCall<byte[], byte[]> call) {
      this.call = call;
    }

    @Override
    public synchronized void send(byte[] frame) {
      if (closed) {
        return;
      }
      if (!headersSent) {
        headersSent = true;
        call.sendHeaders(new Metadata());
      }
      call.sendMessage(frame);
    }

    @Override
    public synchronized boolean isReady() {
      return !closed && call.isReady();
    }

    @Override
    public synchronized void request(int n) {
      if (!closed) {
        call.request(n);
      }
    }

    @Override
    public void finish() {
      close(Status.OK);
    }

    @Override
    public void abort(String why) {
      close(Status.CANCELLED.withDescription(why));
    }

    synchronized void close(Status status) {
      if (!closed) {
        closed = true;
        try {
          call.close(status, new Metadata());
        } catch (IllegalStateException alreadyClosed) {
          // the call was cancelled meanwhile
        }
      }
    }

    @Override
    public void bind(TunnelStream s) {
      stream = s;
    }
  }
}
