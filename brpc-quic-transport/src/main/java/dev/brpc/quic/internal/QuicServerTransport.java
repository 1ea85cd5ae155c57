package dev.brpc.quic.internal;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.SettableFuture;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.engine.EngineStream;
import io.grpc.Attributes;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalLogId;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import io.grpc.internal.KeepAliveManager;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.ServerListener;
import io.grpc.internal.ServerTransport;
import io.grpc.internal.ServerTransportListener;
import io.grpc.internal.StatsTraceContext;
import io.grpc.internal.TransportTracer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The callee role on one connection: a grpc-java server transport that accepts the peer's
 * call streams. On a connection the server accepted it owns the connection (shutting it down
 * drains and closes the connection); on a connection a client dialed it is a guest (shutting
 * it down refuses the peer's new calls and leaves the connection up).
 *
 * <p>Thread-safe. {@link #streamOpened} runs on an engine thread (or where the peer's SETTINGS
 * were parsed, for a stream that came before them); a call starts on the thread that parsed
 * its request HEADERS (see {@link StreamReader}). None of it blocks. Listener callbacks are
 * made outside the lock.
 */
final class QuicServerTransport implements ServerTransport, Connection.Callee,
    Connection.Listener {
  private static final Logger log = Logger.getLogger(QuicServerTransport.class.getName());

  private final InternalLogId logId;
  private final Connection connection;
  private final boolean owner;
  private final List<? extends ServerStreamTracer.Factory> tracerFactories;
  private final int maxInboundMessageSize;
  private final int maxInboundMetadataSize;
  private final long headersTimeoutNanos;
  private final int maxResetsPerWindow;
  private final long resetWindowNanos;
  private final TransportTracer tracer = new TransportTracer();
  private static final int MAX_EARLY_CANCELS = 256;

  private final Object lock = new Object();
  @GuardedBy("lock") private ServerTransportListener listener;
  @GuardedBy("lock") private Attributes attributes;
  /** The calls being served, by stream id. */
  @GuardedBy("lock") private final Map<Integer, QuicServerStream> streams = new HashMap<>();
  /**
   * CANCELs for streams not (or no longer) being served, with their codes, the oldest dropped
   * past {@value #MAX_EARLY_CANCELS}: a CANCEL can overtake its stream's first bytes (another
   * QUIC stream), so the call is cancelled when it arrives. A CANCEL for a call that had just
   * finished also lands here, once, and ages out.
   */
  @GuardedBy("lock") private final LinkedHashMap<Integer, Long> earlyCancels =
      new LinkedHashMap<>() {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Integer, Long> eldest) {
          return size() > MAX_EARLY_CANCELS;
        }
      };
  @GuardedBy("lock") private boolean shutdown;
  /** The connection's listeners have been told it terminated (see maybeTerminate). */
  @GuardedBy("lock") private boolean connectionTerminated;
  @GuardedBy("lock") private boolean terminated;
  @GuardedBy("lock") private KeepAliveManager keepAlive;
  @GuardedBy("lock") private long resetWindowStartNanos;
  @GuardedBy("lock") private int resetsInWindow;

  /**
   * @param limits the request limits of the gRPC server this transport serves: the
   *     connection's own config on the listening side, the callback server's on a dialed one
   */
  QuicServerTransport(Connection connection, boolean owner,
      List<? extends ServerStreamTracer.Factory> tracerFactories, TransportConfig limits) {
    this.connection = connection;
    this.owner = owner;
    this.tracerFactories = tracerFactories;
    this.maxInboundMessageSize = limits.maxInboundMessageSize;
    this.maxInboundMetadataSize = limits.maxInboundMetadataSize;
    this.headersTimeoutNanos = limits.headersTimeoutNanos;
    this.maxResetsPerWindow = limits.maxResetsPerWindow;
    this.resetWindowNanos = limits.resetWindowNanos;
    this.logId = InternalLogId.allocate(getClass(), connection.remoteAddress.toString());
  }

  /**
   * Registers with the gRPC server and starts taking the peer's calls.
   *
   * @param extra attributes the layer above attached (identity, peer metadata)
   */
  void start(ServerListener serverListener, Attributes extra) {
    ServerTransportListener l = serverListener.transportCreated(this);
    Attributes attrs = l.transportReady(
        connection.baseAttributes().setAll(extra).build());
    synchronized (lock) {
      listener = l;
      attributes = attrs;
      TransportConfig config = connection.config;
      if (config.keepAliveTimeNanos != Long.MAX_VALUE) {
        keepAlive = new KeepAliveManager(new KeepAliveManager.KeepAlivePinger() {
          @Override
          public void ping() {
            connection.ping(new io.grpc.internal.ClientTransport.PingCallback() {
              @Override
              public void onSuccess(long rtt) {}

              @Override
              public void onFailure(Status cause) {}
            }, Runnable::run);
          }

          @Override
          public void onPingTimeout() {
            shutdownNow(Status.UNAVAILABLE.withDescription(
                "keepalive ping not answered: the client is likely gone"));
          }
        }, SharedExecutors.timer(), config.keepAliveTimeNanos, config.keepAliveTimeoutNanos,
            true);
        keepAlive.onTransportStarted();
      }
    }
    connection.setCallee(this);
    Status gone = connection.addListener(this);
    if (gone != null) {
      terminated(gone);
    }
  }

  @Override
  public void streamOpened(EngineStream stream) {
    ServerTransportListener l;
    Attributes attrs;
    synchronized (lock) {
      l = listener;
      attrs = attributes;
      if (shutdown) {
        l = null;
      }
    }
    if (l == null) {
      connection.refuseCall(stream, Status.UNAVAILABLE.withDescription(
          "server is shutting down"), true);
      return;
    }
    new PendingCall(l, attrs, stream).start();
  }

  /**
   * A call stream until its request HEADERS are complete: the reader parses them as they
   * arrive, and the call starts, or the stream is answered, from the reader's pump. A deadline
   * resets a stream whose HEADERS do not come; whichever of the two settles first wins.
   */
  private final class PendingCall implements StreamReader.Handler {
    private final ServerTransportListener listener;
    private final Attributes attrs;
    private final EngineStream stream;
    private final StreamReader reader;
    private final StreamEvents events = new StreamEvents();
    private final AtomicBoolean settled = new AtomicBoolean();
    private ScheduledFuture<?> deadline;

    PendingCall(ServerTransportListener listener, Attributes attrs, EngineStream stream) {
      this.listener = listener;
      this.attrs = attrs;
      this.stream = stream;
      this.reader = new StreamReader(stream, this, connection, true, maxInboundMetadataSize);
      events.reader(reader);
    }

    void start() {
      deadline = SharedExecutors.timer().schedule(() -> {
        if (settled.compareAndSet(false, true)) {
          headersTimedOut(stream);
        }
      }, headersTimeoutNanos, TimeUnit.NANOSECONDS);
      reader.start(events);
    }

    @Override
    public StreamReader.Handler requestHeaders(HeaderBlock.Decoded headers) {
      if (!settled.compareAndSet(false, true)) {
        return null; // the deadline won the race: the stream is already reset
      }
      deadline.cancel(false);
      return startCall(listener, attrs, stream, reader, events, headers);
    }

    @Override
    public void sideChannel(long callStreamId, byte[] leftover) {
      if (settled.compareAndSet(false, true)) {
        deadline.cancel(false);
        connection.sideChannelArrived(stream, events, callStreamId, leftover);
      }
    }

    @Override
    public void failed(Status status, boolean resetByPeer) {
      if (settled.compareAndSet(false, true)) {
        deadline.cancel(false);
        rejectBeforeHeaders(stream, status);
      }
    }

    @Override
    public void headers(HeaderBlock.Decoded headers) {
      throw new AssertionError("HEADERS go to requestHeaders");
    }

    @Override
    public void data(ReadableBuffer chunk) {
      throw new AssertionError("DATA before HEADERS is a protocol error");
    }

    @Override
    public void trailers(HeaderBlock.Decoded trailers) {
      throw new AssertionError("TRAILERS before HEADERS is a protocol error");
    }

    @Override
    public void endOfStream() {
      throw new AssertionError("FIN before HEADERS fails the stream");
    }
  }

  /**
   * Resets a call stream whose request HEADERS are not complete within the headers timeout
   * and counts it as a reset by the peer: a legitimate caller sends its headers at once. And
   * kwik 0.10.9 ignores a RESET_STREAM for a stream it has not created yet
   * (StreamManager.process(ResetStreamFrame)), so a call reset before its first byte left
   * shows up here, as an empty stream created because a later one arrived, never as a reset.
   * Runs on the timer thread.
   */
  private void headersTimedOut(EngineStream stream) {
    log.log(Level.FINE, "{0}: request headers not complete within {1} ms; resetting the"
        + " stream", new Object[] {this, TimeUnit.NANOSECONDS.toMillis(headersTimeoutNanos)});
    long code = Wire.errorCode(Status.DEADLINE_EXCEEDED);
    stream.reset(code);
    stream.stopSending(code);
    peerResetCall();
  }

  /** The stream failed before its HEADERS were complete; {@code status} says how. */
  private void rejectBeforeHeaders(EngineStream stream, Status status) {
    if (status.getCause() instanceof MetadataTooLargeException) {
      StreamRejector.reject(stream, Status.RESOURCE_EXHAUSTED.withDescription(
          "request metadata too large: " + status.getDescription()), false);
    } else if (status.getCause() instanceof ProtocolException) {
      StreamRejector.reject(stream, status, false); // "protocol error: ..."
    } else {
      // Reset by the peer or the connection went away before the call began.
      log.log(Level.FINEST, "stream ended before its HEADERS: {0}", status);
      if (connection.terminatedStatus() != null) {
        return; // the connection is gone: nothing to reset, and no peer reset to count
      }
      stream.reset(Wire.errorCode(Status.CANCELLED));
      stream.stopSending(Wire.errorCode(Status.CANCELLED));
      peerResetCall();
    }
  }

  /**
   * Starts the call whose request HEADERS {@code reader} parsed; returns the handler for the
   * rest of its request, or null if the stream was answered otherwise. On the reader's pump:
   * never blocks.
   */
  private StreamReader.Handler startCall(ServerTransportListener l, Attributes attrs,
      EngineStream stream, StreamReader reader, StreamEvents events,
      HeaderBlock.Decoded headers) {
    if (!headers.path.startsWith("/")) {
      StreamRejector.reject(stream, Status.UNIMPLEMENTED.withDescription(
          "malformed method path: " + headers.path), false);
      return null;
    }
    String method = headers.path.substring(1);
    // The handler finds the call's side channels in its Context, which a tracer sets.
    SideChannelSlot sideChannels = new SideChannelSlot();
    // Bound before the call can be cancelled (a CANCEL, a shutdownNow): its end then finds it.
    sideChannels.bind(connection, stream.id());
    List<ServerStreamTracer.Factory> tracers = new ArrayList<>(tracerFactories.size() + 1);
    tracers.addAll(tracerFactories);
    tracers.add(SideChannelSlot.tracerFactory(sideChannels));
    StatsTraceContext stats =
        StatsTraceContext.newServerContext(tracers, method, headers.metadata);
    QuicServerStream s = new QuicServerStream(this, connection, stream, reader, events, stats,
        tracer, attrs, headers.authority, maxInboundMessageSize, sideChannels);
    Status closed = connection.register(s);
    if (closed != null) {
      sideChannels.callEnded(stream.id(), closed, false);
      stream.reset(Wire.errorCode(Status.CANCELLED));
      stream.stopSending(Wire.errorCode(Status.CANCELLED));
      return null;
    }
    Long cancelled;
    boolean refused;
    synchronized (lock) {
      // Checked again under the lock: a shutdownNow between streamOpened's check and here
      // would not see this stream among those it cancels.
      refused = shutdown;
      cancelled = refused ? null : earlyCancels.remove(s.streamId());
      if (!refused && cancelled == null) {
        streams.put(s.streamId(), s);
      }
    }
    if (refused) {
      connection.unregister(s);
      Status shuttingDown = Status.UNAVAILABLE.withDescription("server is shutting down");
      sideChannels.callEnded(stream.id(), shuttingDown, false);
      StreamRejector.reject(stream, shuttingDown, true);
      return null;
    }
    if (cancelled != null) {
      connection.unregister(s);
      sideChannels.callEnded(stream.id(), Status.CANCELLED, false);
      stream.reset(cancelled);
      // The request ended with FIN before the CANCEL: the reader discards it (StopReading).
      reader.abort(cancelled);
      return null;
    }
    KeepAliveManager k = keepAlive();
    if (k != null) {
      k.onTransportActive();
    }
    l.streamCreated(s, method, headers.metadata);
    return s.started();
  }

  /**
   * The peer reset one of its calls before it completed, or left one without headers past the
   * headers timeout. Cancelling is normal; thousands per second is a flood (each costs the
   * peer a frame and us a stream and a call), so past the limit the connection is
   * closed with RESOURCE_EXHAUSTED.
   */
  void peerResetCall() {
    if (maxResetsPerWindow <= 0) {
      return;
    }
    boolean flood;
    synchronized (lock) {
      long now = System.nanoTime();
      if (resetsInWindow == 0 || now - resetWindowStartNanos > resetWindowNanos) {
        resetWindowStartNanos = now;
        resetsInWindow = 0;
      }
      flood = ++resetsInWindow == maxResetsPerWindow + 1;
    }
    if (flood) {
      log.log(Level.WARNING, "{0}: the peer reset more than {1} calls within {2} ms; closing"
          + " the connection", new Object[] {this, maxResetsPerWindow,
              TimeUnit.NANOSECONDS.toMillis(resetWindowNanos)});
      Status s = Status.RESOURCE_EXHAUSTED.withDescription("too many calls reset by the peer");
      // Not on the caller's thread, which may be the engine's (a reader's pump): closing
      // runs every connection listener, and a server's last connection closes its connector.
      SharedExecutors.io().execute(() -> {
        connection.shutdownNow(s);
        connection.terminate(s);
      });
    }
  }

  /**
   * The caller cancelled the call on stream {@code streamId} after finishing its request
   * (a CANCEL control frame). Counts as a reset by the peer.
   */
  @Override
  public void cancelled(long streamId, long code) {
    QuicServerStream s;
    synchronized (lock) {
      s = streams.get((int) streamId);
      if (s == null) {
        earlyCancels.put((int) streamId, code);
      }
    }
    if (s != null) {
      s.cancelledByPeer(code);
    }
    peerResetCall();
  }

  void streamReleased(QuicServerStream stream) {
    boolean idle;
    synchronized (lock) {
      streams.remove(stream.streamId(), stream);
      idle = streams.isEmpty();
    }
    KeepAliveManager k = keepAlive();
    if (idle && k != null) {
      k.onTransportIdle();
    }
    maybeTerminate();
  }

  @Override
  public void shutdown() {
    synchronized (lock) {
      if (shutdown) {
        return;
      }
      shutdown = true;
    }
    if (owner) {
      connection.shutdown(Status.UNAVAILABLE.withDescription("server is shutting down"));
    } else {
      connection.refuseNewPeerStreams();
    }
    maybeTerminate();
  }

  @Override
  public void shutdownNow(Status reason) {
    List<QuicServerStream> active;
    synchronized (lock) {
      shutdown = true;
      active = new ArrayList<>(streams.values());
    }
    if (owner) {
      connection.shutdownNow(reason);
      connection.terminate(reason);
    } else {
      connection.refuseNewPeerStreams();
      for (QuicServerStream s : active) {
        s.cancel(reason);
      }
    }
    maybeTerminate();
  }

  private void maybeTerminate() {
    ServerTransportListener l;
    KeepAliveManager k;
    synchronized (lock) {
      // An owner ends with its connection, and only once the connection's listeners have run
      // (the server's tracker closes the socket there): a thread that merely sees the status
      // set could report termination while another is still notifying them.
      boolean done = owner ? connectionTerminated
          : connection.terminatedStatus() != null || (shutdown && streams.isEmpty());
      if (terminated || !done || listener == null) {
        return;
      }
      terminated = true;
      l = listener;
      k = keepAlive;
      keepAlive = null;
    }
    if (k != null) {
      k.onTransportTermination();
    }
    connection.removeListener(this);
    l.transportTerminated();
  }

  @Override
  public void terminated(Status status) {
    synchronized (lock) {
      connectionTerminated = true;
    }
    maybeTerminate();
  }

  @Override
  public void controlFrameReceived() {
    KeepAliveManager k = keepAlive();
    if (k != null) {
      k.onDataReceived();
    }
  }

  private KeepAliveManager keepAlive() {
    synchronized (lock) {
      return keepAlive;
    }
  }

  @Override
  public ScheduledExecutorService getScheduledExecutorService() {
    return SharedExecutors.timer();
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
    synchronized (lock) {
      return logId + "(" + connection + (shutdown ? ", shut down" : "")
          + (streams.isEmpty() ? "" : ", serving " + streams.values()) + ")";
    }
  }

}
