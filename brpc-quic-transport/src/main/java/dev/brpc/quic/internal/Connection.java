package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.ConnectionInfo;
import dev.brpc.quic.QuicAttributes;
import dev.brpc.quic.engine.CloseInfo;
import dev.brpc.quic.engine.ConnectionHandler;
import dev.brpc.quic.engine.ConnectionStats;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineStream;
import io.grpc.Attributes;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import io.grpc.internal.ClientTransport.PingCallback;
import io.grpc.internal.GrpcAttributes;
import java.io.IOException;
import java.net.SocketAddress;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One QUIC connection as brpc uses it (PROTOCOL.md): the two control streams (SETTINGS, PING,
 * GOAWAY), the call streams of both roles, and the graceful close. Every peer runs up to two
 * roles over it: a caller ({@link QuicClientTransport}s open streams) and a callee (one
 * {@link QuicServerTransport} accepts the peer's streams).
 *
 * <p>Closing: a side that wants the connection gone sends GOAWAY(CLOSING) and both sides stop
 * opening streams; a side with no active streams left sends GOAWAY(CLOSING|DRAINED); a side
 * that has received DRAINED and has no active streams closes the QUIC connection. That order
 * matters because kwik discards stream data a peer has received but not yet read when the
 * connection closes, so neither side may close while the other could still be reading.
 *
 * <p>The QUIC side is an {@link EngineConnection} (the engine seam, package {@code
 * dev.brpc.quic.engine}): nothing here knows which engine runs it.
 *
 * <p>Thread-safe; nothing here blocks. The engine's threads deliver the peer's streams and
 * their bytes: call streams and the control stream are parsed where the bytes arrive ({@link
 * StreamReader}, {@link ControlReader}); control frames go out through a {@link StreamWriter}.
 * Termination is handed to {@link SharedExecutors#io()}, since its listeners may block (a
 * server closing its socket).
 */
final class Connection {
  private static final Logger log = Logger.getLogger(Connection.class.getName());
  private static final AtomicLong ids = new AtomicLong();
  private static final SecureRandom random = new SecureRandom();

  static final int GOAWAY_CLOSING = 0x01;
  static final int GOAWAY_DRAINED = 0x02;

  /** A call stream registered on this connection. */
  interface Stream {
    /** The connection is gone; fail the call with {@code status}. Any thread. */
    void connectionClosed(Status status);
  }

  /** Takes the peer's call streams: the callee role. */
  interface Callee {
    /** A new call stream from the peer. Runs on an engine thread; must not block. */
    void streamOpened(EngineStream stream);

    /**
     * The peer cancelled its call on stream {@code streamId} after finishing the request
     * (CANCEL). Runs where the control stream is parsed; must not block.
     */
    void cancelled(long streamId, long code);
  }

  /** Observes the connection's lifecycle. Callbacks run on io threads, outside locks. */
  interface Listener {
    /** The peer's SETTINGS arrived (first control frame). */
    default void settingsReceived(Metadata peerMetadata) {}

    /** Either side started closing, or the peer refuses our new streams: open no more. */
    default void refusingNewStreams(Status status) {}

    /** A control frame arrived: the peer is alive (drives gRPC keepalive). */
    default void controlFrameReceived() {}

    /** The connection is closed; every registered stream has been failed already. */
    default void terminated(Status status) {}
  }

  final EngineConnection engine;
  /** The engine's {@code QuicEngine.name()}, for {@link ConnectionInfo}. */
  final String engineName;
  /** When the QUIC handshake completed: the engine hands over established connections. */
  final Instant connectedSince = Instant.now();
  final boolean dialer;
  final String id;
  final SocketAddress remoteAddress;
  final SocketAddress localAddress;
  final TransportConfig config;

  private final Object lock = new Object();
  private final CopyOnWriteArrayList<Listener> listeners = new CopyOnWriteArrayList<>();
  private final StreamWriter controlWriter = new StreamWriter(new ControlWriterCallback());
  /** SETTINGS is queued: later control frames may follow it (before, they are dropped). */
  private volatile boolean settingsQueued;
  private final AtomicBoolean peerControlSeen = new AtomicBoolean();
  private boolean firstControlFrame = true; // touched by the control reader only
  final CompletableFuture<Metadata> peerSettings = new CompletableFuture<>();

  private volatile Callee callee;

  @GuardedBy("lock") private final Set<Stream> streams = new HashSet<>();
  @GuardedBy("lock") private boolean calleeRefusing;
  @GuardedBy("lock") private boolean peerRefusing;
  @GuardedBy("lock") private boolean closingSent;
  @GuardedBy("lock") private boolean closingReceived;
  @GuardedBy("lock") private boolean drainedSent;
  @GuardedBy("lock") private boolean drainedReceived;
  @GuardedBy("lock") private Status terminatedStatus;
  @GuardedBy("lock") private Status shutdownStatus;
  /** Why this side closed the connection at once (shutdownNow), for onTerminated. */
  @GuardedBy("lock") private Status shutdownNowStatus;
  @GuardedBy("lock") private final List<PendingPing> pings = new ArrayList<>();
  /** Null when disabled. */
  private final StallWatchdog watchdog;
  /** Readers whose consumer is behind (window full): {@link StallWatchdog.Actions#heldBack}. */
  private final AtomicInteger heldBack = new AtomicInteger();
  /** Calls that take side channels, by call stream id (both roles). */
  private final ConcurrentHashMap<Long, SideChannelSlot> sideChannelCalls =
      new ConcurrentHashMap<>();
  /**
   * Side channels the peer opened for one of its calls whose HEADERS have not been read yet
   * (the side channel's first bytes overtook them), until the call starts or the headers
   * timeout passes. Bounded by the peer's stream credit.
   */
  @GuardedBy("lock") private final Map<Long, List<ParkedSideChannel>> parkedSideChannels =
      new HashMap<>();
  /** The peer's calls that ended lately: a side channel for one is refused at once. */
  @GuardedBy("lock") private final LinkedHashMap<Long, Boolean> endedPeerCalls =
      new LinkedHashMap<>() {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, Boolean> eldest) {
          return size() > 256;
        }
      };

  Connection(EngineConnection engine, String engineName, boolean dialer,
      TransportConfig config) {
    this.engine = engine;
    this.engineName = engineName;
    this.dialer = dialer;
    this.remoteAddress = engine.remoteAddress();
    this.localAddress = engine.localAddress();
    this.config = config;
    this.id = "quic-" + ids.incrementAndGet();
    this.watchdog =
        config.stallTimeoutNanos == Long.MAX_VALUE && config.idleProbeNanos == Long.MAX_VALUE
        ? null : new StallWatchdog(id, config.stallTimeoutNanos, config.idleProbeNanos,
            new StallWatchdog.Actions() {
              @Override
              public boolean ready() {
                return settingsQueued && peerSettings.isDone();
              }

              @Override
              public boolean callsOpen() {
                synchronized (lock) {
                  return !streams.isEmpty();
                }
              }

              @Override
              public boolean heldBack() {
                return heldBack.get() > 0;
              }

              @Override
              public void sendProbe() {
                // A PING of its own, not ping(): that joins an outstanding PING instead of
                // sending one, and a probe must reach the peer every time. The answer counts as
                // progress like any control frame; its payload matches no pending ping.
                writeControl(pingFrame(0, random.nextLong()));
              }

              @Override
              public void close(Status status) {
                shutdownNow(status);
                terminate(status);
              }
            });
  }

  /** A stream's reader stopped (or resumed) reading because its consumer is behind. */
  void heldBack(boolean held) {
    heldBack.addAndGet(held ? 1 : -1);
  }

  /** Something arrived from the peer (see {@link StallWatchdog}). Any thread; cheap. */
  void progress() {
    StallWatchdog w = watchdog;
    if (w != null) {
      w.progress();
    }
  }

  /**
   * Starts taking the engine's events (the peer's streams, the close). Call once the first
   * listeners are added: the peer's SETTINGS may be parsed at once.
   */
  void start() {
    Diagnostics.register(this);
    if (watchdog != null) {
      watchdog.start();
    }
    engine.start(new ConnectionHandler() {
      @Override
      public void peerStreamOpened(EngineStream stream) {
        onPeerStream(stream);
      }

      @Override
      public void closed(CloseInfo info) {
        SharedExecutors.io().execute(() -> onTerminated(info));
      }
    });
  }

  /**
   * Adds a listener, unless the connection has terminated: then returns its status and the
   * listener hears nothing. Checked under the lock that {@link #terminate} sets the status
   * under, so a listener either hears {@code terminated} or gets the status here.
   */
  Status addListener(Listener listener) {
    synchronized (lock) {
      if (terminatedStatus != null) {
        return terminatedStatus;
      }
      listeners.add(listener);
      return null;
    }
  }

  void removeListener(Listener listener) {
    listeners.remove(listener);
  }

  /** Sets the callee role; null means this side serves no calls. */
  void setCallee(Callee callee) {
    this.callee = callee;
  }

  /**
   * Called on an engine thread for every stream the peer opens: never blocks. A call stream
   * is taken there (its reader parses as bytes arrive, see {@link StreamReader}); on the
   * dialer, not before the peer's SETTINGS, which attach the callee role.
   */
  private void onPeerStream(EngineStream stream) {
    if (!stream.isBidirectional()) {
      if (peerControlSeen.compareAndSet(false, true)) {
        new ControlReader(stream, new ControlFrames()).start();
      } else {
        stream.stopSending(Wire.PROTOCOL_ERROR);
        closeWithError(Wire.PROTOCOL_ERROR, "more than one control stream");
      }
      return;
    }
    if (dialer && !peerSettings.isDone()) {
      // The server sends SETTINGS before its first call, but streams can overtake each other;
      // the stream's bytes wait in the engine (under flow control) until SETTINGS arrive.
      peerSettings.whenComplete((m, e) -> {
        if (e != null) {
          // The connection failed before SETTINGS: nothing to serve, not even side channels.
          StreamRejector.reject(stream, Status.UNAVAILABLE.withDescription(
              "call stream before SETTINGS"), true);
        } else {
          acceptCallStream(stream);
        }
      });
      return;
    }
    acceptCallStream(stream);
  }

  private void acceptCallStream(EngineStream stream) {
    Callee c = callee;
    Status refusal;
    synchronized (lock) {
      // Refused once this side stopped accepting (its GOAWAY or its own shutdown), not because
      // the peer sent CLOSING: a peer that sent CLOSING opens no new calls, so a stream from
      // it is a call it started before (its first frame can overtake the GOAWAY on the
      // control stream); the peer does not send DRAINED while that call is active.
      refusal = terminatedStatus != null || calleeRefusing || drainedReceived
          ? Status.UNAVAILABLE.withDescription("peer is not accepting new calls on this"
              + " connection") : null;
    }
    if (refusal == null && c == null && !dialer) {
      refusal = Status.UNAVAILABLE.withDescription("connection not admitted yet");
    }
    if (refusal == null && c == null) {
      refuseCall(stream, Status.UNIMPLEMENTED.withDescription(
          "the peer serves no services on this connection"), false);
      return;
    }
    if (refusal != null) {
      refuseCall(stream, refusal, true);
      return;
    }
    c.streamOpened(stream);
  }

  /**
   * Answers a peer's stream that is not served as a call with {@code status}, once its first
   * frame shows it is a call: a side channel of a call still running is served even so (a
   * draining connection, a client that serves no services). Never blocks.
   */
  void refuseCall(EngineStream stream, Status status, boolean refused) {
    new RefusedStream(stream, status, refused).start();
  }

  /** A peer's stream to be refused, until its first frame is read (see {@link #refuseCall}). */
  private final class RefusedStream implements StreamReader.Handler {
    private final EngineStream stream;
    private final Status status;
    private final boolean refused;
    private final StreamEvents events = new StreamEvents();
    private final StreamReader reader;
    private final AtomicBoolean settled = new AtomicBoolean();
    private volatile ScheduledFuture<?> deadline;

    RefusedStream(EngineStream stream, Status status, boolean refused) {
      this.stream = stream;
      this.status = status;
      this.refused = refused;
      this.reader = new StreamReader(stream, this, Connection.this, true);
      events.reader(reader);
    }

    void start() {
      deadline = SharedExecutors.timer().schedule(() -> {
        if (settled.compareAndSet(false, true)) {
          long code = Wire.errorCode(Status.DEADLINE_EXCEEDED);
          stream.reset(code);
          stream.stopSending(code);
        }
      }, config.headersTimeoutNanos, TimeUnit.NANOSECONDS);
      reader.start(events);
    }

    private boolean settle() {
      if (!settled.compareAndSet(false, true)) {
        return false;
      }
      ScheduledFuture<?> d = deadline;
      if (d != null) {
        d.cancel(false);
      }
      return true;
    }

    @Override
    public StreamReader.Handler requestHeaders(HeaderBlock.Decoded headers) {
      if (settle()) {
        StreamRejector.reject(stream, status, refused);
      }
      return null;
    }

    @Override
    public void sideChannel(long callStreamId, byte[] leftover) {
      if (settle()) {
        sideChannelArrived(stream, events, callStreamId, leftover);
      }
    }

    @Override
    public void failed(Status failure, boolean resetByPeer) {
      if (!settle()) {
        return;
      }
      if (resetByPeer || terminatedStatus() != null) {
        long code = Wire.errorCode(Status.CANCELLED);
        stream.reset(code);
        stream.stopSending(code);
      } else {
        StreamRejector.reject(stream, failure, false); // protocol error, metadata too large
      }
    }

    @Override
    public void headers(HeaderBlock.Decoded headers) {
      throw new AssertionError("HEADERS go to requestHeaders");
    }

    @Override
    public void data(io.grpc.internal.ReadableBuffer chunk) {
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

  // ---------------------------------------------------------------------------------------
  // Side channels (PROTOCOL.md section 7).

  /** A side channel waiting for the peer's call it names (see {@link #parkedSideChannels}). */
  private static final class ParkedSideChannel {
    final EngineStream stream;
    final StreamEvents events;
    final byte[] leftover;
    ScheduledFuture<?> timeout;

    ParkedSideChannel(EngineStream stream, StreamEvents events, byte[] leftover) {
      this.stream = stream;
      this.events = events;
      this.leftover = leftover;
    }
  }

  /** The call on {@code callStreamId} takes side channels: those parked for it go to it now. */
  void registerSideChannels(long callStreamId, SideChannelSlot slot) {
    sideChannelCalls.put(callStreamId, slot);
    List<ParkedSideChannel> parked;
    synchronized (lock) {
      parked = parkedSideChannels.remove(callStreamId);
    }
    if (parked != null) {
      for (ParkedSideChannel p : parked) {
        p.timeout.cancel(false);
        acceptSideChannel(slot, p.stream, p.events, p.leftover);
      }
    }
  }

  /** The call on {@code callStreamId} ended: it takes no more side channels. */
  void unregisterSideChannels(long callStreamId, SideChannelSlot slot) {
    if (sideChannelCalls.remove(callStreamId, slot) && isPeerCall(callStreamId)) {
      synchronized (lock) {
        endedPeerCalls.put(callStreamId, Boolean.TRUE);
      }
    }
  }

  /** Whether {@code streamId} is one of the peer's bidirectional streams (its calls). */
  private boolean isPeerCall(long streamId) {
    return (streamId & 0x3) == (dialer ? 1 : 0);
  }

  /**
   * The peer's stream {@code stream} is a side channel of the call on {@code callStreamId}:
   * hand it to the call, park it until the call starts, or refuse it. On the thread that
   * parsed its first frame; never blocks.
   */
  void sideChannelArrived(EngineStream stream, StreamEvents events, long callStreamId,
      byte[] leftover) {
    SideChannelSlot slot = sideChannelCalls.get(callStreamId);
    if (slot == null && isPeerCall(callStreamId)) {
      ParkedSideChannel p = new ParkedSideChannel(stream, events, leftover);
      synchronized (lock) {
        // Looked up again under the lock, which registerSideChannels takes after its put.
        slot = sideChannelCalls.get(callStreamId);
        if (slot == null && terminatedStatus == null
            && !endedPeerCalls.containsKey(callStreamId)) {
          parkedSideChannels.computeIfAbsent(callStreamId, k -> new ArrayList<>()).add(p);
          p.timeout = SharedExecutors.timer().schedule(() -> parkedTimedOut(callStreamId, p),
              config.headersTimeoutNanos, TimeUnit.NANOSECONDS);
          return;
        }
      }
    }
    if (slot == null) {
      refuseSideChannel(stream, "no call " + callStreamId + " takes side channels");
      return;
    }
    acceptSideChannel(slot, stream, events, leftover);
  }

  private void parkedTimedOut(long callStreamId, ParkedSideChannel p) {
    boolean removed;
    synchronized (lock) {
      List<ParkedSideChannel> list = parkedSideChannels.get(callStreamId);
      removed = list != null && list.remove(p);
      if (list != null && list.isEmpty()) {
        parkedSideChannels.remove(callStreamId);
      }
    }
    if (removed) {
      refuseSideChannel(p.stream, "call " + callStreamId + " did not start in time");
    }
  }

  private void refuseSideChannel(EngineStream stream, String why) {
    log.log(Level.FINE, "{0}: side channel {1} refused: {2}",
        new Object[] {id, stream.id(), why});
    long code = Wire.errorCode(Status.NOT_FOUND);
    stream.reset(code);
    stream.stopSending(code);
  }

  private void acceptSideChannel(SideChannelSlot slot, EngineStream stream, StreamEvents events,
      byte[] leftover) {
    SideChannelStream s = new SideChannelStream(this, stream, slot, leftover);
    if (register(s) != null) {
      return; // the connection is gone, and the stream with it
    }
    events.handOver(s);
    try {
      stream.write(SideChannelStream.ACCEPTED, 0, SideChannelStream.ACCEPTED.length, false);
    } catch (IOException | RuntimeException e) {
      s.abort(Status.UNAVAILABLE.withDescription("cannot answer a side channel").withCause(e),
          Wire.errorCode(Status.CANCELLED));
      return;
    }
    if (!slot.arrived(s)) {
      s.abort(Status.NOT_FOUND.withDescription("the call has ended"),
          Wire.errorCode(Status.NOT_FOUND));
      return;
    }
    s.readable(); // bytes that came before the hand-over wake no one otherwise
  }

  // ---------------------------------------------------------------------------------------
  // Stream accounting and the graceful close.

  /** Registers a stream; returns the status to fail it with if the connection is closed. */
  Status register(Stream stream) {
    synchronized (lock) {
      if (terminatedStatus != null) {
        return terminatedStatus;
      }
      streams.add(stream);
      return null;
    }
  }

  /** The call streams open now, in both directions. */
  int openStreams() {
    synchronized (lock) {
      return streams.size();
    }
  }

  /** What is known of the connection now (see {@link ConnectionInfo}). */
  ConnectionInfo info() {
    ConnectionStats s = engine.stats();
    return new ConnectionInfo(engineName, connectedSince,
        s.smoothedRttNanos() < 0 ? null : Duration.ofNanos(s.smoothedRttNanos()),
        s.bytesSent(), s.bytesReceived(), s.packetsSent(), s.packetsReceived(),
        s.packetsLost(), openStreams());
  }

  /** The stream is done on this side; may finish a graceful close. */
  void unregister(Stream stream) {
    boolean check;
    synchronized (lock) {
      check = streams.remove(stream) && streams.isEmpty() && (closingSent || closingReceived);
    }
    if (check) {
      progressClose();
    }
  }

  /** Whether new outgoing streams must fail: the connection is closing or closed. */
  Status newStreamRefusal() {
    synchronized (lock) {
      if (terminatedStatus != null) {
        return terminatedStatus;
      }
      if (closingSent || closingReceived || peerRefusing) {
        return shutdownStatus != null ? shutdownStatus
            : Status.UNAVAILABLE.withDescription("connection is closing");
      }
      return null;
    }
  }

  /** The callee role stops: tell the peer to open no more streams toward us. */
  void refuseNewPeerStreams() {
    synchronized (lock) {
      if (calleeRefusing || terminatedStatus != null) {
        return;
      }
      calleeRefusing = true;
    }
    sendGoAway(0);
  }

  /** Starts a graceful close: both roles stop opening streams; in-flight calls finish. */
  void shutdown(Status status) {
    synchronized (lock) {
      if (closingSent || terminatedStatus != null) {
        return;
      }
      closingSent = true;
      calleeRefusing = true;
      if (shutdownStatus == null) {
        shutdownStatus = status;
      }
    }
    sendGoAway(GOAWAY_CLOSING);
    notifyRefusing(status);
    progressClose();
  }

  /** Closes at once: every call fails with {@code status}. */
  void shutdownNow(Status status) {
    synchronized (lock) {
      // The engine reports our own close as a termination too, on another thread; that may
      // run before the caller's terminate(status), and must fail the calls with this status,
      // not with a generic "connection closed".
      if (shutdownNowStatus == null) {
        shutdownNowStatus = status;
      }
    }
    closeWithError(Wire.errorCode(status), status.getDescription() == null
        ? status.getCode().toString() : status.getDescription());
  }

  /** Closes the QUIC connection with an application error; the peer sees the code and reason. */
  void closeWithError(long code, String reason) {
    engine.close(code, reason == null ? "" : reason);
  }

  private void progressClose() {
    boolean sendDrained = false;
    boolean close = false;
    synchronized (lock) {
      if (terminatedStatus != null || !streams.isEmpty() || !(closingSent || closingReceived)) {
        return;
      }
      if (!drainedSent) {
        drainedSent = true;
        closingSent = true;
        sendDrained = true;
      }
      close = drainedReceived;
    }
    if (sendDrained) {
      sendGoAway(GOAWAY_CLOSING | GOAWAY_DRAINED);
    }
    if (close) {
      engine.close(Wire.NO_ERROR, "");
    }
  }

  private void notifyRefusing(Status status) {
    for (Listener l : listeners) {
      l.refusingNewStreams(status);
    }
  }

  private void onTerminated(CloseInfo info) {
    Status status;
    switch (info.kind()) {
      case PEER_APPLICATION:
        status = Wire.statusForErrorCode(info.code(), "connection closed by peer");
        if (!info.reason().isEmpty()) {
          status = status.withDescription(info.reason());
        }
        break;
      case PEER_TRANSPORT:
        String name = CloseInfo.transportErrorName(info.code());
        status = Status.UNAVAILABLE.withDescription((info.code() == 2
            ? "connection refused by the peer: it is shutting down or not accepting connections"
            : "connection closed by the peer: " + (name != null ? name
                : "transport error " + info.code()))
            + (info.reason().isEmpty() ? "" : " (\"" + info.reason() + "\")"));
        break;
      case IDLE_TIMEOUT:
      case LOST:
        status = Status.UNAVAILABLE.withDescription("connection to " + remoteAddress
            + " timed out (" + info.reason() + ")");
        break;
      default:
        synchronized (lock) {
          status = shutdownNowStatus;
        }
        if (status == null) {
          status = Status.UNAVAILABLE.withDescription("connection closed"
              + (info.kind() == CloseInfo.Kind.INTERNAL ? ": " + info.reason() : ""));
        }
    }
    terminate(status);
  }

  /** Fails everything with {@code status}; idempotent. Any thread. */
  void terminate(Status status) {
    Diagnostics.unregister(this);
    List<Stream> failed;
    List<PendingPing> failedPings;
    synchronized (lock) {
      if (terminatedStatus != null) {
        return;
      }
      terminatedStatus = status;
      failed = new ArrayList<>(streams);
      streams.clear();
      failedPings = new ArrayList<>(pings);
      pings.clear();
    }
    log.log(Level.FINE, "{0} terminated: {1}", new Object[] {id, status});
    if (watchdog != null) {
      watchdog.stop();
    }
    peerSettings.completeExceptionally(status.asRuntimeException());
    controlWriter.reset(-1);
    for (Stream s : failed) {
      s.connectionClosed(status);
    }
    // The engine closes too, if it has not (a terminate of our own, say).
    engine.close(Wire.errorCode(status), status.getDescription());
    for (PendingPing p : failedPings) {
      p.fail(status);
    }
    for (Listener l : listeners) {
      try {
        l.terminated(status);
      } catch (RuntimeException e) {
        // The others (a transport waiting to terminate, say) must still hear it.
        log.log(Level.WARNING, id + ": a connection listener threw", e);
      }
    }
  }

  Status terminatedStatus() {
    synchronized (lock) {
      return terminatedStatus;
    }
  }

  /**
   * The status a stream whose I/O failed ends with because the connection is gone: the
   * terminated status, or, while this side's shutdownNow is closing it, the shutdownNow status
   * (the engine fails reads before terminate runs). Null while the connection is up.
   */
  Status closedStatus() {
    synchronized (lock) {
      return terminatedStatus != null ? terminatedStatus : shutdownNowStatus;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Opening streams.

  /** Receives the result of {@link #openStream}. */
  interface OpenCallback {
    /**
     * Runs on the thread that asked, or on an engine thread; must not block. Return false to
     * give the stream back unused.
     */
    boolean opened(EngineStream stream);

    void failed(Status status);
  }

  /**
   * Opens a bidirectional stream: at once when the peer's stream credit allows it (the
   * callback runs on the calling thread), else once the peer grants more, in request order, as
   * HTTP/2 queues calls behind MAX_CONCURRENT_STREAMS ({@link EngineConnection#openStream}).
   */
  void openStream(OpenCallback callback) {
    Status refusal = terminatedStatus();
    if (refusal != null) {
      callback.failed(refusal);
      return;
    }
    engine.openStream(true, new EngineConnection.OpenCallback() {
      @Override
      public void opened(EngineStream stream) {
        if (!callback.opened(stream)) {
          long code = Wire.errorCode(Status.CANCELLED);
          stream.reset(code);
          stream.stopSending(code);
        }
      }

      @Override
      public void failed(IOException cause) {
        Status s = closedStatus();
        callback.failed(s != null ? s
            : Status.UNAVAILABLE.withDescription("cannot open a stream").withCause(cause));
      }
    });
  }

  // ---------------------------------------------------------------------------------------
  // Control stream.

  /** Opens our control stream and sends SETTINGS with {@code metadata}. */
  void sendSettings(Metadata metadata) {
    byte[] settings = new byte[16];
    int pos = Varint.write(Wire.SETTING_MAX_METADATA_SIZE, settings, 0);
    pos = Varint.write(config.maxInboundMetadataSize, settings, pos);
    byte[] prefix = new byte[Varint.size(pos) + pos];
    int p = Varint.write(pos, prefix, 0);
    System.arraycopy(settings, 0, prefix, p, pos);
    controlWriter.enqueue(
        HeaderBlock.encodeFrame(Wire.FRAME_SETTINGS, metadata, null, null, prefix), true);
    settingsQueued = true;
    engine.openStream(false, new EngineConnection.OpenCallback() {
      @Override
      public void opened(EngineStream stream) {
        stream.start(new StreamEvents().writer(controlWriter));
        controlWriter.attach(stream);
      }

      @Override
      public void failed(IOException cause) {
        handleControlWriteFailure(cause);
      }
    });
  }

  private void sendGoAway(int flags) {
    writeControl(new byte[] {Wire.FRAME_GOAWAY, 1, (byte) flags});
  }

  private void writeControl(byte[] frame) {
    if (settingsQueued) { // else the connection failed before it was admitted: nothing to say
      controlWriter.enqueue(frame, true);
    }
  }

  private final class ControlWriterCallback implements StreamWriter.Callback {
    @Override
    public void written(int flowBytes) {}

    @Override
    public void writeFailed(IOException e) {
      handleControlWriteFailure(e);
    }

    @Override
    public void finished() {}
  }

  private void handleControlWriteFailure(Exception e) {
    if (terminatedStatus() == null) {
      log.log(Level.FINE, id + ": control stream write failed", e);
      closeWithError(Wire.PROTOCOL_ERROR, "control stream write failed");
    }
  }

  /** The peer's control frames, as {@link ControlReader} parses them. */
  private final class ControlFrames implements ControlReader.Frames {
    @Override
    public void frame(long type, byte[] payload)
        throws ProtocolException, MetadataTooLargeException {
      if (firstControlFrame != (type == Wire.FRAME_SETTINGS)) {
        throw new ProtocolException(firstControlFrame ? "first control frame is not SETTINGS"
            : "SETTINGS received twice");
      }
      firstControlFrame = false;
      progress();
      for (Listener l : listeners) {
        l.controlFrameReceived();
      }
      if (type == Wire.FRAME_SETTINGS) {
        onSettings(payload);
      } else if (type == Wire.FRAME_PING) {
        onPing(payload);
      } else if (type == Wire.FRAME_GOAWAY) {
        onGoAway(payload);
      } else if (type == Wire.FRAME_CANCEL) {
        onCancel(payload);
      } else {
        throw new ProtocolException("unknown control frame type 0x" + Long.toHexString(type));
      }
    }

    @Override
    public void failed(Exception e) {
      if (e instanceof ProtocolException || e instanceof MetadataTooLargeException) {
        log.log(Level.FINE, id + ": control stream protocol error", e);
        closeWithError(Wire.PROTOCOL_ERROR, e.getMessage());
      } else if (terminatedStatus() == null) {
        log.log(Level.FINE, id + ": control stream failed", e);
        closeWithError(Wire.PROTOCOL_ERROR, "control stream closed: " + e.getMessage());
      }
    }
  }

  private void onSettings(byte[] payload) throws ProtocolException, MetadataTooLargeException {
    int[] pos = {0};
    long settingsLength = Varint.read(payload, pos, payload.length);
    if (settingsLength > payload.length - pos[0]) {
      throw new ProtocolException("SETTINGS list runs past the frame");
    }
    int end = pos[0] + (int) settingsLength;
    while (pos[0] < end) {
      Varint.read(payload, pos, end); // id: version 1 only informs, unknown ids are ignored
      Varint.read(payload, pos, end);
    }
    HeaderBlock.Decoded block = HeaderBlock.decode(
        payload, end, payload.length - end, false, config.maxInboundMetadataSize);
    // Listeners first: the dialer attaches its callee role there, before call streams that
    // wait for peerSettings are let through.
    for (Listener l : listeners) {
      l.settingsReceived(block.metadata);
    }
    peerSettings.complete(block.metadata);
  }

  /**
   * Cancels our call on {@code stream} whose request was finished (FIN): the peer, which may
   * have read that FIN, learns of the cancel from the control stream (PROTOCOL.md section 4).
   */
  void sendCancel(EngineStream stream, long code) {
    byte[] payload = new byte[16];
    int n = Varint.write(stream.id(), payload, 0);
    n = Varint.write(code, payload, n);
    byte[] frame = new byte[2 + n];
    frame[0] = Wire.FRAME_CANCEL;
    frame[1] = (byte) n; // at most 16: a one-byte varint
    System.arraycopy(payload, 0, frame, 2, n);
    writeControl(frame);
  }

  private void onCancel(byte[] payload) throws ProtocolException {
    int[] pos = {0};
    long streamId = Varint.read(payload, pos, payload.length);
    long code = Varint.read(payload, pos, payload.length);
    if (pos[0] != payload.length) {
      throw new ProtocolException("CANCEL with trailing bytes");
    }
    // Our peer's bidirectional streams: client-initiated (low bits 00) if we accepted the
    // connection, server-initiated (01) if we dialed it.
    if ((streamId & 0x3) != (dialer ? 1 : 0) || streamId > Integer.MAX_VALUE) {
      throw new ProtocolException("CANCEL names stream " + streamId
          + ", not one of the peer's call streams");
    }
    Callee c = callee;
    if (c != null) {
      c.cancelled(streamId, code);
    }
  }

  private void onGoAway(byte[] payload) throws ProtocolException {
    if (payload.length < 1) {
      throw new ProtocolException("GOAWAY without flags");
    }
    int flags = payload[0];
    Status status = Status.UNAVAILABLE.withDescription(
        (flags & GOAWAY_CLOSING) != 0 ? "peer is closing the connection"
            : "peer accepts no new calls on this connection");
    synchronized (lock) {
      peerRefusing = true;
      if ((flags & GOAWAY_CLOSING) != 0) {
        closingReceived = true; // calls the peer already started still arrive: accept them
      }
      if ((flags & GOAWAY_DRAINED) != 0) {
        drainedReceived = true;
      }
    }
    notifyRefusing(status);
    progressClose();
  }

  // ---------------------------------------------------------------------------------------
  // PING.

  private static final class PendingPing {
    final long payload;
    final long startNanos = System.nanoTime();
    final List<PingCallback> callbacks = new ArrayList<>();
    final List<Executor> executors = new ArrayList<>();

    PendingPing(long payload) {
      this.payload = payload;
    }

    void succeed() {
      long rtt = System.nanoTime() - startNanos;
      for (int i = 0; i < callbacks.size(); i++) {
        PingCallback cb = callbacks.get(i);
        executors.get(i).execute(() -> cb.onSuccess(rtt));
      }
    }

    void fail(Status status) {
      for (int i = 0; i < callbacks.size(); i++) {
        PingCallback cb = callbacks.get(i);
        executors.get(i).execute(() -> cb.onFailure(status));
      }
    }
  }

  /** Sends a PING (or joins the one outstanding); the callback runs on {@code executor}. */
  void ping(PingCallback callback, Executor executor) {
    long payload;
    synchronized (lock) {
      if (terminatedStatus != null) {
        Status s = terminatedStatus;
        executor.execute(() -> callback.onFailure(s));
        return;
      }
      if (!pings.isEmpty()) {
        PendingPing p = pings.get(0);
        p.callbacks.add(callback);
        p.executors.add(executor);
        return;
      }
      PendingPing p = new PendingPing(random.nextLong());
      p.callbacks.add(callback);
      p.executors.add(executor);
      pings.add(p);
      payload = p.payload;
    }
    writeControl(pingFrame(0, payload));
  }

  private static byte[] pingFrame(int flags, long payload) {
    byte[] frame = new byte[2 + Wire.PING_PAYLOAD_SIZE];
    frame[0] = Wire.FRAME_PING;
    frame[1] = Wire.PING_PAYLOAD_SIZE;
    frame[2] = (byte) flags;
    for (int i = 0; i < 8; i++) {
      frame[3 + i] = (byte) (payload >>> (56 - 8 * i));
    }
    return frame;
  }

  private void onPing(byte[] payload) throws ProtocolException {
    if (payload.length != Wire.PING_PAYLOAD_SIZE) {
      throw new ProtocolException("PING payload must be 9 bytes");
    }
    long data = 0;
    for (int i = 1; i < 9; i++) {
      data = (data << 8) | (payload[i] & 0xff);
    }
    if ((payload[0] & Wire.PING_FLAG_ACK) == 0) {
      writeControl(pingFrame(Wire.PING_FLAG_ACK, data));
      return;
    }
    PendingPing done = null;
    synchronized (lock) {
      if (!pings.isEmpty() && pings.get(0).payload == data) {
        done = pings.remove(0);
      }
    }
    if (done != null) {
      done.succeed();
    }
  }

  /** The attributes every call on this connection sees, before the layer above adds its own. */
  Attributes.Builder baseAttributes() {
    return Attributes.newBuilder()
        .set(Grpc.TRANSPORT_ATTR_REMOTE_ADDR, remoteAddress)
        .set(Grpc.TRANSPORT_ATTR_LOCAL_ADDR, localAddress)
        .set(GrpcAttributes.ATTR_SECURITY_LEVEL, SecurityLevel.PRIVACY_AND_INTEGRITY)
        .set(QuicAttributes.CONNECTION_ID, id);
  }

  @Override
  public String toString() {
    return id + (dialer ? " to " : " from ") + remoteAddress;
  }
}
