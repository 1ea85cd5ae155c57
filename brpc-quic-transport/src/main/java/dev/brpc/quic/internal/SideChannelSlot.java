package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.SideChannel;
import dev.brpc.quic.engine.EngineStream;
import io.grpc.Context;
import io.grpc.Metadata;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.SocketTimeoutException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;

/**
 * The side channels of one call (PROTOCOL.md section 7), behind the public {@code
 * dev.brpc.quic.SideChannels}: internal, no compatibility promise.
 *
 * <p>A callee's slot is bound to its call when the call starts ({@link QuicServerTransport}); a
 * caller's, taken from the call options, when the call's stream opens ({@link
 * QuicClientStream}); a transparent retry binds it again, to the new stream. Bound, it is
 * registered with the connection, which hands it the side channels the peer opens for the
 * call ({@link #arrived}). When the call ends ({@link #callEnded}): with an error, every channel
 * is reset; OK, outputs not closed are reset and the rest goes on (PROTOCOL.md).
 *
 * <p>Thread-safe. {@link #open} and {@link #accept} block the application's thread, waiting on
 * this object's monitor; everything else is called on transport or engine threads and never
 * blocks.
 */
public final class SideChannelSlot {
  /** The slot of the call whose handler runs (set by {@link #tracerFactory}). */
  private static final Context.Key<SideChannelSlot> CONTEXT_KEY =
      Context.key("dev.brpc.quic.sideChannels");

  private final Object lock = new Object();
  @GuardedBy("lock") private Connection connection;
  @GuardedBy("lock") private long callStreamId = -1;
  /** How the call ended; null while it runs. */
  @GuardedBy("lock") private Status ended;
  @GuardedBy("lock") private final ArrayDeque<SideChannelStream> arrived = new ArrayDeque<>();
  @GuardedBy("lock") private final Set<SideChannelStream> channels = new HashSet<>();
  /** {@link #open} calls waiting for a stream (peer credit): failed when the call ends. */
  @GuardedBy("lock") private final Set<java.util.concurrent.CompletableFuture<SideChannelStream>>
      pendingOpens = new HashSet<>();

  /** The current call's slot, from the gRPC Context; null outside a brpc call's handler. */
  public static SideChannelSlot current() {
    return CONTEXT_KEY.get();
  }

  /**
   * A tracer factory whose tracer puts {@code slot} into the call's Context, so that the
   * handler finds it ({@link #current()}).
   */
  static ServerStreamTracer.Factory tracerFactory(SideChannelSlot slot) {
    return new ServerStreamTracer.Factory() {
      @Override
      public ServerStreamTracer newServerStreamTracer(String fullMethodName, Metadata headers) {
        return new ServerStreamTracer() {
          @Override
          public Context filterContext(Context context) {
            return context.withValue(CONTEXT_KEY, slot);
          }
        };
      }
    };
  }

  /**
   * The call runs on {@code streamId} of {@code connection}: registers the slot there. A caller's
   * slot bound again (a transparent retry) leaves its earlier stream.
   */
  void bind(Connection connection, long streamId) {
    Connection previous;
    long previousId;
    synchronized (lock) {
      previous = this.connection;
      previousId = callStreamId;
      this.connection = connection;
      this.callStreamId = streamId;
      this.ended = null;
      lock.notifyAll();
    }
    if (previous != null) {
      previous.unregisterSideChannels(previousId, this);
    }
    connection.registerSideChannels(streamId, this);
  }

  /**
   * The call on {@code streamId} ended with {@code status} (ignored if the slot moved to another
   * stream since), as {@code caller} or callee sees it. Runs on a transport thread; never
   * blocks.
   */
  void callEnded(long streamId, Status status, boolean caller) {
    Connection c;
    List<SideChannelStream> taken;
    List<SideChannelStream> untaken;
    synchronized (lock) {
      if (callStreamId != streamId || ended != null) {
        return;
      }
      ended = status;
      c = connection;
      // A caller may still take channels that came before an OK end (its call returned, it
      // accepts); a callee's handler is done with the call: nobody would take them.
      boolean keepUntaken = caller && status.isOk();
      untaken = keepUntaken ? List.of() : new ArrayList<>(arrived);
      if (!keepUntaken) {
        arrived.clear();
      }
      taken = new ArrayList<>(channels);
      taken.removeAll(untaken);
      for (java.util.concurrent.CompletableFuture<SideChannelStream> f : pendingOpens) {
        f.completeExceptionally(new IOException("cannot open a side channel: the call has ended ("
            + status.getCode() + ")"));
      }
      pendingOpens.clear();
      if (keepUntaken && !arrived.isEmpty()) {
        // Kept for an accept() after the call returned, not for ever: untaken, they would hold
        // their streams (and a graceful close) and their unread bytes the connection's window.
        SharedExecutors.timer().schedule(this::expireUntaken, c.config.headersTimeoutNanos,
            java.util.concurrent.TimeUnit.NANOSECONDS);
      }
      lock.notifyAll();
    }
    c.unregisterSideChannels(streamId, this);
    Status reason = Status.CANCELLED.withDescription("its call ended: " + status.getCode()
        + (status.getDescription() == null ? "" : ": " + status.getDescription()));
    for (SideChannelStream s : taken) {
      if (status.isOk()) {
        s.callEndedOk();
      } else {
        s.abort(reason, Wire.errorCode(Status.CANCELLED));
      }
    }
    for (SideChannelStream s : untaken) {
      s.abort(status.isOk() ? Status.CANCELLED.withDescription(
          "its call ended before the side channel was accepted") : reason,
          Wire.errorCode(Status.CANCELLED));
    }
  }

  /** A caller's channels still untaken some time after an OK end: given up. */
  private void expireUntaken() {
    List<SideChannelStream> untaken;
    synchronized (lock) {
      untaken = new ArrayList<>(arrived);
      arrived.clear();
    }
    for (SideChannelStream s : untaken) {
      s.abort(Status.CANCELLED.withDescription("not accepted in time after its call ended"),
          Wire.errorCode(Status.CANCELLED));
    }
  }

  /**
   * A caller's call failed before its stream was bound to this slot (no stream, or refused
   * before it opened): the slot ends with {@code status}, unless an attempt has bound it.
   */
  void endUnbound(Status status) {
    synchronized (lock) {
      if (callStreamId >= 0 || ended != null) {
        return;
      }
      ended = status;
      for (java.util.concurrent.CompletableFuture<SideChannelStream> f : pendingOpens) {
        f.completeExceptionally(new IOException("cannot open a side channel: the call has ended"));
      }
      pendingOpens.clear();
      lock.notifyAll();
    }
  }

  /**
   * The peer opened a side channel for this call and it has been answered: queue it for
   * {@link #accept}. False if the call ended first (the caller resets it).
   */
  boolean arrived(SideChannelStream s) {
    synchronized (lock) {
      if (ended != null) {
        return false;
      }
      channels.add(s);
      arrived.add(s);
      lock.notifyAll();
      return true;
    }
  }

  /** The channel is done in both directions. */
  void released(SideChannelStream s) {
    synchronized (lock) {
      channels.remove(s);
      arrived.remove(s);
    }
  }

  /** See {@code SideChannels.open()}. */
  public SideChannel open() throws IOException {
    Connection c;
    long id;
    synchronized (lock) {
      while (connection == null && ended == null) {
        await(Long.MAX_VALUE);
      }
      if (ended != null) {
        throw new IOException("cannot open a side channel: the call has ended ("
            + ended.getCode() + ")");
      }
      c = connection;
      id = callStreamId;
    }
    java.util.concurrent.CompletableFuture<SideChannelStream> opened =
        new java.util.concurrent.CompletableFuture<>();
    synchronized (lock) {
      pendingOpens.add(opened);
    }
    c.openStream(new Connection.OpenCallback() {
      @Override
      public boolean opened(EngineStream stream) {
        SideChannelStream s = new SideChannelStream(c, stream, SideChannelSlot.this, null);
        // Registered before the check: a call ending in between then finds it (and aborts it,
        // which unregisters it); registered after, it would stay for ever.
        Status closed = c.register(s);
        if (closed != null) {
          opened.completeExceptionally(new IOException("cannot open a side channel: connection"
              + " closed: " + closed.getCode() + ": " + closed.getDescription()));
          return false;
        }
        synchronized (lock) {
          pendingOpens.remove(opened);
          if (ended != null || callStreamId != id || opened.isDone()) {
            c.unregister(s);
            opened.completeExceptionally(new IOException(
                "cannot open a side channel: the call has ended"));
            return false;
          }
          channels.add(s);
        }
        stream.start(s);
        byte[] frame = new byte[2 + Varint.size(id)];
        frame[0] = Wire.FRAME_SIDE_CHANNEL;
        frame[1] = (byte) Varint.size(id);
        Varint.write(id, frame, 2);
        try {
          stream.write(frame, 0, frame.length, false); // a fresh stream takes a few bytes
        } catch (IOException | RuntimeException e) {
          s.abort(Status.UNAVAILABLE.withDescription("cannot write to a new stream")
              .withCause(e), Wire.errorCode(Status.CANCELLED));
          opened.completeExceptionally(new IOException("cannot open a side channel", e));
          return true;
        }
        opened.complete(s);
        return true;
      }

      @Override
      public void failed(Status status) {
        synchronized (lock) {
          pendingOpens.remove(opened);
        }
        opened.completeExceptionally(new IOException("cannot open a side channel: "
            + status.getCode() + ": " + status.getDescription(), status.asException()));
      }
    });
    SideChannelStream s = join(opened);
    join(s.accepted);
    return s;
  }

  /** See {@code SideChannels.accept()}; {@code timeoutNanos} is Long.MAX_VALUE for none. */
  public SideChannel accept(long timeoutNanos) throws IOException {
    long deadline = System.nanoTime() + timeoutNanos;
    synchronized (lock) {
      while (true) {
        SideChannelStream s = arrived.poll();
        if (s != null) {
          return s;
        }
        if (ended != null) {
          throw new IOException("no side channel: the call has ended (" + ended.getCode() + ")");
        }
        long left = timeoutNanos == Long.MAX_VALUE ? Long.MAX_VALUE : deadline - System.nanoTime();
        if (left <= 0) {
          throw new SocketTimeoutException("no side channel within the timeout");
        }
        await(left);
      }
    }
  }

  @GuardedBy("lock")
  private void await(long nanos) throws InterruptedIOException {
    try {
      if (nanos == Long.MAX_VALUE) {
        lock.wait();
      } else {
        lock.wait(Math.max(1, nanos / 1_000_000), 0);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for a side channel");
    }
  }

  private static <T> T join(java.util.concurrent.CompletableFuture<T> f) throws IOException {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while opening a side channel");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      throw cause instanceof IOException ? new IOException(cause.getMessage(), cause)
          : new IOException(cause);
    }
  }

  @Override
  public String toString() {
    synchronized (lock) {
      return "call " + callStreamId + (ended == null ? "" : " ended " + ended.getCode())
          + ", " + channels.size() + " channels";
    }
  }
}
