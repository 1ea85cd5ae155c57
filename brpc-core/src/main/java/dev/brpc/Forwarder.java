package dev.brpc;

import com.google.common.io.ByteStreams;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.HandlerRegistry;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The server's fallback registry when a {@link Director} is set: every method the server does
 * not implement resolves to a handler that asks the director for a {@link Route} and pipes the
 * call, as raw bytes, to a new call on the route's channel.
 *
 * <p>Forwarded calls are bidirectional streaming on both legs, whatever the method's real type:
 * the bytes on the wire are the same, and neither leg checks message counts, so unary and
 * streaming calls all pass unchanged.
 *
 * <p>Thread-safe; each call's state is guarded by its own lock (see {@link Pipe}).
 */
final class Forwarder<C> extends HandlerRegistry {
  /** Messages stay serialized: nothing is decoded on the way through. */
  static final MethodDescriptor.Marshaller<byte[]> RAW = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return ByteStreams.toByteArray(stream);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  };

  private static final Logger log = Logger.getLogger(Forwarder.class.getName());
  /** A secondary this many request bytes behind the primary (not ready for them) is cancelled. */
  static final long SECONDARY_LAG_LIMIT = 8 * 1024 * 1024;
  /** grpc's deadline header (reserved, but a key like any other to discard). */
  private static final Metadata.Key<String> DEADLINE_HEADER =
      Metadata.Key.of("grpc-timeout", Metadata.ASCII_STRING_MARSHALLER);

  private final Director<C> director;
  private final BrpcServer<C> server;
  private final Function<Context, ConnectedClient<C>> callerOf;
  private final ServerCallHandler<byte[], byte[]> handler = this::startCall;

  Forwarder(Director<C> director, BrpcServer<C> server,
      Function<Context, ConnectedClient<C>> callerOf) {
    this.director = director;
    this.server = server;
    this.callerOf = callerOf;
  }

  @Override
  public ServerMethodDefinition<?, ?> lookupMethod(String methodName, String authority) {
    return ServerMethodDefinition.create(rawMethod(methodName), handler);
  }

  static MethodDescriptor<byte[], byte[]> rawMethod(String fullMethodName) {
    return MethodDescriptor.<byte[], byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.BIDI_STREAMING)
        .setFullMethodName(fullMethodName)
        .setRequestMarshaller(RAW)
        .setResponseMarshaller(RAW)
        .build();
  }

  private ServerCall.Listener<byte[]> startCall(ServerCall<byte[], byte[]> call,
      Metadata headers) {
    Pipe pipe = new Pipe(call, headers);
    if (director.peeksFirstMessage(call.getMethodDescriptor().getFullMethodName())) {
      call.request(1);
    } else {
      pipe.route(null, false);
    }
    return pipe.fromCaller;
  }

  /**
   * One forwarded call: the caller's leg (a {@link ServerCall}) and the target's (a {@link
   * ClientCall}), joined. Each leg asks its source for the next message only when the other leg
   * can take it, so a slow reader on either end slows the writer on the other and each side
   * buffers at most about one message.
   *
   * <p>The two legs' callbacks run on different executors; every operation on either call is
   * made under {@code lock}. None of them blocks: grpc's calls only queue work.
   */
  private final class Pipe extends ClientCall.Listener<byte[]> {
    private final Object lock = new Object();
    private final ServerCall<byte[], byte[]> caller;
    private final Metadata headers;
    final ServerCall.Listener<byte[]> fromCaller = new FromCaller();
    /** Null until directed. */
    @GuardedBy("lock")
    private ClientCall<byte[], byte[]> target;
    /** A request message went to the target when it was not ready: request the next on ready. */
    @GuardedBy("lock")
    private boolean requestWhenTargetReady;
    /** A response went to the caller when it was not ready: request the next on ready. */
    @GuardedBy("lock")
    private boolean requestWhenCallerReady;
    @GuardedBy("lock")
    private boolean done;
    @GuardedBy("lock")
    private final List<Secondary> secondaries = new ArrayList<>();

    Pipe(ServerCall<byte[], byte[]> caller, Metadata headers) {
      this.caller = caller;
      this.headers = headers;
    }

    /** Asks the director and starts the target's leg; runs in the call's Context. */
    void route(byte[] firstMessage, boolean halfClosed) {
      String method = caller.getMethodDescriptor().getFullMethodName();
      // The deadline travels in the Context; a copy of the caller's header would be stale.
      headers.discardAll(DEADLINE_HEADER);
      Route route;
      try {
        route = director.direct(new ForwardedCall<>(server, method, caller.getAuthority(), headers,
            callerOf.apply(Context.current()), firstMessage));
      } catch (StatusException e) {
        closeCaller(e.getStatus(), e.getTrailers());
        return;
      } catch (StatusRuntimeException e) {
        closeCaller(e.getStatus(), e.getTrailers());
        return;
      } catch (RuntimeException e) {
        closeCaller(Status.INTERNAL.withDescription("the server's director failed on " + method
            + ": " + e).withCause(e), null);
        return;
      }
      if (route == null) {
        closeCaller(Status.UNIMPLEMENTED.withDescription("Method not found: " + method), null);
        return;
      }
      synchronized (lock) {
        if (done) {
          return; // the caller cancelled while the director decided
        }
        MethodDescriptor<byte[], byte[]> raw = rawMethod(method);
        startSecondaries(route, raw);
        // In the caller's Context: its deadline and cancellation reach the target.
        target = route.channel().newCall(raw, CallOptions.DEFAULT);
        target.start(this, headers);
        target.request(1);
        if (firstMessage != null) {
          target.sendMessage(firstMessage);
          for (Secondary s : secondaries) {
            s.send(firstMessage);
          }
        }
        if (halfClosed) {
          target.halfClose();
          for (Secondary s : secondaries) {
            s.halfClose();
          }
        } else if (target.isReady()) {
          caller.request(1);
        } else {
          requestWhenTargetReady = true;
        }
      }
    }

    /**
     * Starts the route's secondaries, each with a copy of the headers (a call's start changes
     * them), in a fork of the call's Context: the caller's deadline, but not the end of its
     * call, which comes when the primary has answered.
     */
    @GuardedBy("lock")
    private void startSecondaries(Route route, MethodDescriptor<byte[], byte[]> raw) {
      if (route.secondaries().isEmpty()) {
        return;
      }
      Deadline deadline = Context.current().getDeadline();
      CallOptions options = deadline == null
          ? CallOptions.DEFAULT : CallOptions.DEFAULT.withDeadline(deadline);
      Context fork = Context.current().fork();
      Context previous = fork.attach();
      try {
        for (Route r : route.secondaries()) {
          Secondary s = new Secondary(r, route.listener());
          Metadata copy = new Metadata();
          copy.merge(headers);
          s.call = r.channel().newCall(raw, options);
          s.call.start(s, copy);
          s.call.request(Integer.MAX_VALUE); // read and dropped
          secondaries.add(s);
        }
      } finally {
        fork.detach(previous);
      }
    }

    private void closeCaller(Status status, Metadata trailers) {
      synchronized (lock) {
        if (done) {
          return;
        }
        done = true;
        caller.close(status, trailers == null ? new Metadata() : trailers);
      }
    }

    // The target's leg.

    @Override
    public void onHeaders(Metadata responseHeaders) {
      synchronized (lock) {
        if (!done) {
          caller.sendHeaders(responseHeaders);
        }
      }
    }

    @Override
    public void onMessage(byte[] message) {
      synchronized (lock) {
        if (done) {
          return;
        }
        caller.sendMessage(message);
        if (caller.isReady()) {
          target.request(1);
        } else {
          requestWhenCallerReady = true;
        }
      }
    }

    @Override
    public void onReady() {
      synchronized (lock) {
        if (requestWhenTargetReady && !done) {
          requestWhenTargetReady = false;
          caller.request(1);
        }
      }
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      closeCaller(status, trailers);
    }

    /**
     * One secondary's copy of the call; its calls are made under the pipe's {@code lock}, its
     * listener callbacks run on its own call's executor.
     */
    private final class Secondary extends ClientCall.Listener<byte[]> {
      private final Route route;
      private final Route.SecondaryListener listener;
      @GuardedBy("lock")
      ClientCall<byte[], byte[]> call;
      @GuardedBy("lock")
      private boolean halfClosed;
      /** Cancelled, or ended by the secondary: nothing more goes to the call. */
      @GuardedBy("lock")
      private boolean closed;
      /** Request bytes sent since the call was last ready. */
      @GuardedBy("lock")
      private long behind;

      Secondary(Route route, Route.SecondaryListener listener) {
        this.route = route;
        this.listener = listener;
      }

      @GuardedBy("lock")
      void send(byte[] message) {
        if (halfClosed || closed) {
          return;
        }
        call.sendMessage(message);
        if (!call.isReady()) {
          behind += message.length;
          if (behind > SECONDARY_LAG_LIMIT) {
            cancel("the secondary fell more than " + SECONDARY_LAG_LIMIT / (1024 * 1024)
                + " MiB of requests behind the primary");
          }
        }
      }

      @GuardedBy("lock")
      void halfClose() {
        if (!halfClosed && !closed) {
          halfClosed = true;
          call.halfClose();
        }
      }

      @GuardedBy("lock")
      void cancel(String why) {
        if (!closed) {
          closed = true;
          call.cancel(why, null);
        }
      }

      @Override
      public void onReady() {
        synchronized (lock) {
          behind = 0;
        }
      }

      @Override
      public void onClose(Status status, Metadata trailers) {
        synchronized (lock) {
          closed = true;
        }
        try {
          listener.closed(route, status, trailers);
        } catch (RuntimeException e) {
          log.log(Level.WARNING, "Route.SecondaryListener threw", e);
        }
      }
    }

    /** The caller's leg; runs on the server's serialized call executor, in the call's Context. */
    private final class FromCaller extends ServerCall.Listener<byte[]> {
      @Override
      public void onMessage(byte[] message) {
        synchronized (lock) {
          if (target != null) {
            if (done) {
              return; // the target has answered: what the caller still sends goes nowhere
            }
            target.sendMessage(message);
            for (Secondary s : secondaries) {
              s.send(message);
            }
            if (target.isReady()) {
              caller.request(1);
            } else {
              requestWhenTargetReady = true;
            }
            return;
          }
        }
        route(message, false); // the first message, for a director that peeks
      }

      @Override
      public void onHalfClose() {
        synchronized (lock) {
          if (target != null) {
            if (!done) {
              target.halfClose();
            }
            for (Secondary s : secondaries) {
              s.halfClose();
            }
            return;
          }
          if (done) {
            return;
          }
        }
        route(null, true); // half-closed before the peeking director saw a message
      }

      @Override
      public void onCancel() {
        synchronized (lock) {
          done = true;
          if (target != null) {
            target.cancel("the caller cancelled the forwarded call", null);
          }
          for (Secondary s : secondaries) {
            s.cancel("the caller cancelled the forwarded call");
          }
        }
      }

      @Override
      public void onReady() {
        synchronized (lock) {
          if (requestWhenCallerReady && !done) {
            requestWhenCallerReady = false;
            target.request(1);
          }
        }
      }
    }
  }
}
