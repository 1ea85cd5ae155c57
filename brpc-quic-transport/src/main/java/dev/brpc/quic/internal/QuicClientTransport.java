package dev.brpc.quic.internal;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.SettableFuture;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.QuicAttributes;
import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.ClientStreamTracer;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalLogId;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.internal.ClientStream;
import io.grpc.internal.ConnectionClientTransport;
import io.grpc.internal.DisconnectError;
import io.grpc.internal.ClientStreamListener.RpcProgress;
import io.grpc.internal.FailingClientStream;
import io.grpc.internal.GrpcAttributes;
import io.grpc.internal.InUseStateAggregator;
import io.grpc.internal.KeepAliveManager;
import io.grpc.internal.KeepAliveManager.ClientKeepAlivePinger;
import io.grpc.internal.SimpleDisconnectError;
import io.grpc.internal.StatsTraceContext;
import io.grpc.internal.TransportTracer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The caller role on one connection: a grpc-java client transport whose calls open QUIC
 * streams. It either dials a new connection ({@link Dialer}; it then owns the connection) or
 * attaches to a connection that already exists (a server calling back into a client that
 * dialed it; closing such a transport leaves the connection up).
 *
 * <p>Thread-safe. Listener callbacks are made outside the lock.
 */
final class QuicClientTransport
    implements ConnectionClientTransport, ClientKeepAlivePinger.TransportWithDisconnectReason,
        Connection.Listener {
  private static final Logger log = Logger.getLogger(QuicClientTransport.class.getName());

  /** Dials a new connection. */
  interface Dialer {
    /**
     * Connects, starts the connection and sends SETTINGS; the connection's {@code peerSettings}
     * completes later. Never blocks; the future fails with a {@link io.grpc.StatusException}.
     */
    CompletableFuture<Connection> dial();

    /** The connection is ready (SETTINGS exchanged) or gone; for the connection listener. */
    void connected(Connection connection, Attributes attributes);
  }

  private final InternalLogId logId;
  private final Dialer dialer; // null when attached
  private final String authority;
  private final String userAgent;
  private final Attributes eagAttrs;
  private final TransportConfig config;
  private final TransportTracer tracer = new TransportTracer();

  private final Object lock = new Object();
  @GuardedBy("lock") private Listener listener;
  @GuardedBy("lock") private Connection connection;
  @GuardedBy("lock") private Status shutdownStatus;
  @GuardedBy("lock") private boolean shutdownNotified;
  /** transportShutdown has returned: gRPC requires it before transportTerminated. */
  @GuardedBy("lock") private boolean shutdownDelivered;
  @GuardedBy("lock") private boolean terminated;
  @GuardedBy("lock") private final Set<QuicClientStream> streams = new HashSet<>();
  @GuardedBy("lock") private KeepAliveManager keepAlive;
  @GuardedBy("lock") private ScheduledFuture<?> keepOpen;
  private volatile Attributes attributes;

  private final InUseStateAggregator<QuicClientStream> inUse =
      new InUseStateAggregator<QuicClientStream>() {
        @Override
        protected void handleInUse() {
          listener().transportInUse(true);
          KeepAliveManager k = keepAlive();
          if (k != null) {
            k.onTransportActive();
          }
        }

        @Override
        protected void handleNotInUse() {
          listener().transportInUse(false);
          KeepAliveManager k = keepAlive();
          if (k != null) {
            k.onTransportIdle();
          }
        }
      };

  /** A transport that dials its own connection. */
  static QuicClientTransport dialing(Dialer dialer, String authority, String userAgent,
      Attributes eagAttrs, TransportConfig config) {
    return new QuicClientTransport(dialer, null, authority, userAgent, eagAttrs, config);
  }

  /** A transport over an existing connection (the server's side of a callback). */
  static QuicClientTransport attached(Connection connection, String authority,
      String userAgent, Attributes eagAttrs) {
    return new QuicClientTransport(
        null, connection, authority, userAgent, eagAttrs, connection.config);
  }

  private QuicClientTransport(Dialer dialer, Connection connection, String authority,
      String userAgent, Attributes eagAttrs, TransportConfig config) {
    this.dialer = dialer;
    this.connection = connection;
    this.authority = authority;
    this.userAgent = userAgent;
    this.eagAttrs = eagAttrs;
    this.config = config;
    this.logId = InternalLogId.allocate(getClass(), authority);
    this.attributes = Attributes.newBuilder()
        .set(GrpcAttributes.ATTR_CLIENT_EAG_ATTRS, eagAttrs)
        .build();
  }

  @Override
  public Runnable start(Listener listener) {
    synchronized (lock) {
      this.listener = listener;
    }
    if (dialer == null) {
      return this::startAttached;
    }
    dialer.dial().whenComplete((c, e) -> {
      if (e != null) {
        dialFailed(e instanceof java.util.concurrent.CompletionException ? e.getCause() : e);
      } else {
        dialed(c);
      }
    });
    return null;
  }

  private void startAttached() {
    Connection c;
    synchronized (lock) {
      c = connection;
    }
    // Listen first, then check: a connection that terminates in between is seen either way.
    Status refusal = c.addListener(this);
    if (refusal == null) {
      refusal = c.newStreamRefusal();
    }
    if (refusal != null) {
      shutdownWith(refusal, SimpleDisconnectError.CONNECTION_ABORTED);
      maybeTerminate();
      return;
    }
    Metadata peer = c.peerSettings.getNow(new Metadata());
    becomeReady(c, peer);
  }

  private void dialFailed(Throwable e) {
    Status s = e instanceof io.grpc.StatusException
        ? ((io.grpc.StatusException) e).getStatus()
        : Status.UNAVAILABLE.withDescription("cannot connect to " + authority + ": "
            + e.getMessage()).withCause(e);
    log.log(Level.FINE, "dial failed", e);
    shutdownWith(s, SimpleDisconnectError.CONNECTION_ABORTED);
    maybeTerminate();
  }

  private void dialed(Connection c) {
    boolean abandon;
    synchronized (lock) {
      connection = c;
      abandon = shutdownStatus != null;
    }
    Status gone = c.addListener(this);
    if (gone != null) {
      shutdownWith(gone, SimpleDisconnectError.CONNECTION_RESET);
      maybeTerminate();
      return;
    }
    if (abandon) {
      c.shutdownNow(Status.UNAVAILABLE.withDescription("transport shut down while connecting"));
      return;
    }
    ScheduledFuture<?> timeout = SharedExecutors.timer().schedule(() -> {
      if (!c.peerSettings.isDone()) {
        c.shutdownNow(Status.UNAVAILABLE.withDescription("no SETTINGS from the server"));
        c.terminate(Status.UNAVAILABLE.withDescription("handshake with " + authority
            + " timed out: no SETTINGS within the handshake timeout"));
      }
    }, config.handshakeTimeoutNanos, TimeUnit.NANOSECONDS);
    c.peerSettings.whenComplete((peer, e) -> {
      timeout.cancel(false);
      if (e == null) {
        becomeReady(c, peer);
        dialer.connected(c, attributes);
      }
      // else the connection terminated (the server refused us, say): terminated() reports it
    });
  }

  private void becomeReady(Connection c, Metadata peerMetadata) {
    Attributes attrs = c.baseAttributes()
        .set(GrpcAttributes.ATTR_CLIENT_EAG_ATTRS, eagAttrs)
        .set(QuicAttributes.PEER_METADATA, peerMetadata)
        .build();
    Listener l = listener();
    attributes = l.filterTransport(attrs);
    synchronized (lock) {
      if (shutdownStatus != null || terminated) {
        return;
      }
      if (config.keepAliveTimeNanos != Long.MAX_VALUE) {
        keepAlive = new KeepAliveManager(new ClientKeepAlivePinger(this),
            SharedExecutors.timer(), config.keepAliveTimeNanos, config.keepAliveTimeoutNanos,
            config.keepAliveWithoutCalls);
        keepAlive.onTransportStarted();
      } else if (dialer != null && config.idleProbeNanos
          > Math.max(TimeUnit.MILLISECONDS.toNanos(500), config.idleTimeoutNanos / 3)) {
        // QUIC closes a connection after its idle timeout without packets; a grpc channel's
        // connection is expected to stay up while idle, as an HTTP/2 connection does. (The
        // connection's idle probes, when they come often enough, do that already.)
        long period = Math.max(TimeUnit.MILLISECONDS.toNanos(500), config.idleTimeoutNanos / 3);
        keepOpen = SharedExecutors.timer().scheduleWithFixedDelay(
            () -> c.ping(NOOP_PING, Runnable::run), period, period, TimeUnit.NANOSECONDS);
      }
    }
    l.transportReady();
  }

  private static final PingCallback NOOP_PING = new PingCallback() {
    @Override
    public void onSuccess(long roundTripTimeNanos) {}

    @Override
    public void onFailure(Status cause) {}
  };

  @Override
  public ClientStream newStream(MethodDescriptor<?, ?> method, Metadata headers,
      CallOptions callOptions, ClientStreamTracer[] tracers) {
    Connection c;
    Status refusal;
    synchronized (lock) {
      c = connection;
      refusal = shutdownStatus;
    }
    if (refusal == null && c != null) {
      refusal = c.newStreamRefusal();
    }
    if (refusal != null || c == null) {
      // MISCARRIED, as grpc's Netty and OkHttp transports say for a stream that never left a
      // closing transport: the channel then picks again (a load balancer's picker may still
      // hold this transport for a moment after it closed) instead of failing the call.
      return new FailingClientStream(refusal != null ? refusal
          : Status.UNAVAILABLE.withDescription("transport not ready"),
          RpcProgress.MISCARRIED, tracers);
    }
    Attributes attrs = attributes;
    StatsTraceContext stats = StatsTraceContext.newClientContext(tracers, attrs, headers);
    int maxInbound = config.maxInboundMessageSize;
    if (callOptions.getMaxInboundMessageSize() != null) {
      maxInbound = Math.min(maxInbound, callOptions.getMaxInboundMessageSize());
    }
    return new QuicClientStream(this, c, method, headers, callOptions, stats, tracer,
        authority, userAgent, attrs, maxInbound);
  }

  /** A stream is about to open; returns why it may not, or null. */
  Status streamStarted(QuicClientStream stream) {
    synchronized (lock) {
      if (shutdownStatus != null) {
        return shutdownStatus;
      }
      streams.add(stream);
    }
    if (stream.shouldBeCountedForInUse()) {
      // InUseStateAggregator is not thread-safe, and streams start and end on different
      // threads. Unguarded, two calls racing lost an in-use transition: keepalive then stayed
      // idle with calls in flight and never noticed a dead connection. The listener and
      // keepalive are called under this monitor, as grpc's OkHttp transport does under its lock.
      synchronized (inUse) {
        inUse.updateObjectInUse(stream, true);
      }
    }
    return null;
  }

  /** A stream is finished on this side. */
  void streamReleased(QuicClientStream stream) {
    synchronized (lock) {
      streams.remove(stream);
    }
    if (stream.shouldBeCountedForInUse()) {
      synchronized (inUse) {
        inUse.updateObjectInUse(stream, false);
      }
    }
    maybeTerminate();
  }

  @Override
  public void ping(PingCallback callback, Executor executor) {
    Connection c;
    Status s;
    synchronized (lock) {
      c = connection;
      s = terminated ? shutdownStatus : null;
    }
    if (s != null) {
      executor.execute(() -> callback.onFailure(s));
      return;
    }
    if (c == null) {
      executor.execute(() -> callback.onFailure(
          Status.UNAVAILABLE.withDescription("transport not ready")));
      return;
    }
    c.ping(callback, executor);
  }

  @Override
  public void shutdown(Status reason) {
    Connection c;
    synchronized (lock) {
      if (shutdownStatus != null) {
        return;
      }
      c = connection;
    }
    shutdownWith(reason, SimpleDisconnectError.SUBCHANNEL_SHUTDOWN);
    if (dialer != null && c != null) {
      c.shutdown(reason);
    }
    maybeTerminate();
  }

  @Override
  public void shutdownNow(Status reason) {
    shutdownNow(reason, SimpleDisconnectError.SUBCHANNEL_SHUTDOWN);
  }

  @Override
  public void shutdownNow(Status reason, DisconnectError error) {
    Connection c;
    List<QuicClientStream> active;
    synchronized (lock) {
      c = connection;
      active = new ArrayList<>(streams);
    }
    shutdownWith(reason, error);
    for (QuicClientStream s : active) {
      s.cancel(reason);
    }
    if (c != null && dialer != null) {
      c.shutdownNow(reason);
      c.terminate(reason);
    }
    maybeTerminate();
  }

  private void shutdownWith(Status status, DisconnectError error) {
    Listener l;
    KeepAliveManager k;
    ScheduledFuture<?> open;
    synchronized (lock) {
      if (shutdownStatus == null) {
        shutdownStatus = status;
      }
      if (shutdownNotified) {
        return;
      }
      shutdownNotified = true;
      l = listener;
      k = keepAlive;
      keepAlive = null;
      open = keepOpen;
      keepOpen = null;
    }
    if (k != null) {
      k.onTransportTermination();
    }
    if (open != null) {
      open.cancel(false);
    }
    if (l != null) {
      l.transportShutdown(status, error);
    }
    synchronized (lock) {
      shutdownDelivered = true;
    }
    maybeTerminate(); // a caller that raced with us may have skipped it
  }

  private void maybeTerminate() {
    Listener l;
    Connection c;
    synchronized (lock) {
      if (terminated || !shutdownDelivered || !streams.isEmpty()) {
        return;
      }
      // A dialing transport owns its connection: it terminates with the connection, which
      // may still be draining the peer's calls (callbacks) after ours are done.
      if (dialer != null && connection != null && connection.terminatedStatus() == null) {
        return;
      }
      terminated = true;
      l = listener;
      c = connection;
    }
    if (c != null) {
      c.removeListener(this);
    }
    if (l != null) {
      l.transportTerminated();
    }
  }

  // Connection.Listener

  @Override
  public void controlFrameReceived() {
    KeepAliveManager k = keepAlive();
    if (k != null) {
      k.onDataReceived();
    }
  }

  @Override
  public void refusingNewStreams(Status status) {
    shutdownWith(status, SimpleDisconnectError.CONNECTION_ABORTED);
    maybeTerminate();
  }

  @Override
  public void terminated(Status status) {
    shutdownWith(status, SimpleDisconnectError.CONNECTION_RESET);
    maybeTerminate();
  }

  private Listener listener() {
    synchronized (lock) {
      return listener;
    }
  }

  private KeepAliveManager keepAlive() {
    synchronized (lock) {
      return keepAlive;
    }
  }

  @Override
  public Attributes getAttributes() {
    return attributes;
  }

  @Override
  public ListenableFuture<SocketStats> getStats() {
    SettableFuture<SocketStats> f = SettableFuture.create();
    f.set(null);
    return f;
  }

  @Override
  public InternalLogId getLogId() {
    return logId;
  }

  @Override
  public String toString() {
    return logId + "(" + authority + ")";
  }
}
