package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.QuicAttributes;
import io.grpc.Attributes;
import io.grpc.Grpc;
import io.grpc.SecurityLevel;
import io.grpc.internal.GrpcAttributes;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.internal.ClientTransport.PingCallback;
import io.grpc.internal.SerializingExecutor;
import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.SocketAddress;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.ConnectionTerminatedEvent;
import tech.kwik.core.QuicConnection;
import tech.kwik.core.QuicStream;

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
 * <p>Thread-safe. kwik's callback thread never blocks: it takes a call stream itself (nothing
 * there blocks, see {@link StreamReader}) and hands the control stream's blocking reader to
 * {@link SharedExecutors#io()}; control writes run on a serializing executor; stream opening
 * runs on another when it may block (kwik's {@code createStream} blocks while the peer's
 * stream credit is exhausted).
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
    /** A new call stream from the peer. Runs on an io thread; may block reading headers. */
    void streamOpened(QuicStream stream);

    /**
     * The peer cancelled its call on stream {@code streamId} after finishing the request
     * (CANCEL). Runs on the control stream's reader; must not block.
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

  final QuicConnection quic;
  final boolean dialer;
  final String id;
  final SocketAddress remoteAddress;
  final SocketAddress localAddress;
  final TransportConfig config;

  private final Object lock = new Object();
  private final CopyOnWriteArrayList<Listener> listeners = new CopyOnWriteArrayList<>();
  private final Executor controlWriter = new SerializingExecutor(SharedExecutors.io());
  private final Executor opener = new SerializingExecutor(SharedExecutors.io());
  /** Stream requests queued on {@link #opener}; while any is, new ones queue behind it. */
  private final AtomicInteger opensWaiting = new AtomicInteger();
  private final AtomicBoolean peerControlSeen = new AtomicBoolean();
  final CompletableFuture<Metadata> peerSettings = new CompletableFuture<>();

  private volatile Callee callee;
  private final Object openerLock = new Object();
  @GuardedBy("openerLock") private Thread openerThread;
  private OutputStream controlOut; // only touched on controlWriter

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

  Connection(QuicConnection quic, boolean dialer, SocketAddress remoteAddress,
      SocketAddress localAddress, TransportConfig config) {
    this.quic = quic;
    this.dialer = dialer;
    this.remoteAddress = remoteAddress;
    this.localAddress = localAddress;
    this.config = config;
    this.id = "quic-" + ids.incrementAndGet();
    KwikDiagnostics.register(this);
    // Runs on kwik's callback thread: hand off at once.
    quic.setConnectionListener(event -> SharedExecutors.io().execute(() -> onTerminated(event)));
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
   * Called on kwik's callback thread for every stream the peer opens: never blocks. A call
   * stream is taken on this thread (its reader parses as bytes arrive, see {@link
   * StreamReader}) unless it came before the peer's SETTINGS, which an io thread waits for.
   */
  void onPeerStream(QuicStream stream) {
    if (!stream.isUnidirectional() && (!dialer || peerSettings.isDone())) {
      KwikSendFix.apply(stream);
      acceptCallStream(stream);
      return;
    }
    SharedExecutors.io().execute(() -> {
      if (stream.isUnidirectional()) {
        if (peerControlSeen.compareAndSet(false, true)) {
          readControl(stream);
        } else {
          stream.abortReading(Wire.PROTOCOL_ERROR);
          closeWithError(Wire.PROTOCOL_ERROR, "more than one control stream");
        }
      } else {
        KwikSendFix.apply(stream);
        acceptCallStream(stream);
      }
    });
  }

  private void acceptCallStream(QuicStream stream) {
    if (dialer && !peerSettings.isDone()) {
      // The server sends SETTINGS before its first call, but streams can overtake each other;
      // the callee role is attached when SETTINGS arrive.
      try {
        peerSettings.get(config.handshakeTimeoutNanos, java.util.concurrent.TimeUnit.NANOSECONDS);
      } catch (Exception e) {
        StreamRejector.reject(this, stream, Status.UNAVAILABLE.withDescription(
            "call stream before SETTINGS"), true);
        return;
      }
    }
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
      StreamRejector.reject(this, stream, Status.UNIMPLEMENTED.withDescription(
          "the peer serves no services on this connection"), false);
      return;
    }
    if (refusal != null) {
      StreamRejector.reject(this, stream, refusal, true);
      return;
    }
    c.streamOpened(stream);
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
      // kwik reports our own close as a termination event too, on another thread; that may
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
    try {
      quic.close(code, reason == null ? "" : reason);
    } catch (RuntimeException e) {
      log.log(Level.FINE, "close failed", e);
    }
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
      try {
        quic.close();
      } catch (RuntimeException e) {
        log.log(Level.FINE, "close failed", e);
      }
    }
  }

  private void notifyRefusing(Status status) {
    for (Listener l : listeners) {
      l.refusingNewStreams(status);
    }
  }

  private void onTerminated(ConnectionTerminatedEvent event) {
    Status status;
    if (event.hasApplicationError() && event.closedByPeer()) {
      String reason = peerReason(event);
      status = Wire.statusForErrorCode(event.applicationErrorCode(), "connection closed by peer");
      if (reason != null && !reason.isEmpty()) {
        status = status.withDescription(reason);
      }
    } else if (event.closedByPeer()) {
      status = Status.UNAVAILABLE.withDescription("connection closed by peer"
          + (event.hasTransportError() ? ": transport error " + event.transportErrorCode()
              + (event.errorDescription() == null ? "" : " " + event.errorDescription()) : ""));
    } else if (event.closeReason() == ConnectionTerminatedEvent.CloseReason.IdleTimeout
        || event.closeReason() == ConnectionTerminatedEvent.CloseReason.ConnectionLost) {
      status = Status.UNAVAILABLE.withDescription("connection to " + remoteAddress
          + " timed out (no packets for the idle timeout)");
    } else {
      synchronized (lock) {
        status = shutdownNowStatus;
      }
      if (status == null) {
        status = Status.UNAVAILABLE.withDescription("connection closed");
      }
    }
    terminate(status);
  }

  /**
   * The reason phrase the peer's CONNECTION_CLOSE carried. kwik only exposes it wrapped, as
   * {@code "Application error: <code> (<reason>)"}; the code is already in the status.
   */
  static String peerReason(ConnectionTerminatedEvent event) {
    String d = event.errorDescription();
    String prefix = "Application error: " + event.applicationErrorCode();
    if (d == null || !d.startsWith(prefix)) {
      return d;
    }
    String rest = d.substring(prefix.length());
    return rest.startsWith(" (") && rest.endsWith(")") ? rest.substring(2, rest.length() - 1) : null;
  }

  /** Fails everything with {@code status}; idempotent. Any thread. */
  void terminate(Status status) {
    KwikDiagnostics.unregister(this); // every end comes here, a failed connect() included
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
    peerSettings.completeExceptionally(status.asRuntimeException());
    synchronized (openerLock) {
      if (openerThread != null) {
        // kwik's createStream is not woken by a close. Only while createStream runs (see
        // openStream), so the interrupt cannot reach the pooled thread's next task.
        openerThread.interrupt();
      }
    }
    for (Stream s : failed) {
      s.connectionClosed(status);
    }
    // Readers of streams that are not registered calls (a call before its HEADERS, a stream
    // being drained after STOP_SENDING) end now rather than at their timers.
    KwikReceiveHook.connectionClosed(quic);
    for (PendingPing p : failedPings) {
      p.fail(status);
    }
    for (Listener l : listeners) {
      l.terminated(status);
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
   * (kwik fails blocked reads before terminate runs). Null while the connection is up.
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
     * Runs on the thread that asked, or on the opener; must not block. Return false to reset
     * the stream unused.
     */
    boolean opened(QuicStream stream);

    void failed(Status status);
  }

  /**
   * Opens a bidirectional stream. When the peer's stream credit allows one now and no earlier
   * request waits, the stream is opened and {@code callback} runs on the calling thread, without
   * blocking ({@link KwikStreams}); otherwise on the opener executor, in request order: kwik's
   * {@code createStream} blocks while the peer's credit is used up, so calls queue there as
   * they would behind HTTP/2's MAX_CONCURRENT_STREAMS. (A request racing one that just started
   * to wait may overtake it; each still gets a stream.)
   */
  void openStream(OpenCallback callback) {
    if (opensWaiting.get() == 0 && terminatedStatus() == null) {
      QuicStream stream = KwikStreams.tryCreateBidirectional(quic);
      if (stream != null) {
        KwikSendFix.apply(stream);
        deliver(stream, callback);
        return;
      }
    }
    opensWaiting.incrementAndGet();
    opener.execute(() -> {
      try {
        openOnOpener(callback);
      } finally {
        opensWaiting.decrementAndGet();
      }
    });
  }

  private void openOnOpener(OpenCallback callback) {
    QuicStream stream;
    synchronized (openerLock) {
      openerThread = Thread.currentThread();
    }
    try {
      // Checked after registering as the opener: a terminate() from now on interrupts us.
      Status refusal = terminatedStatus();
      if (refusal != null) {
        callback.failed(refusal);
        return;
      }
      stream = quic.createStream(true);
      KwikSendFix.apply(stream);
    } catch (IOException | RuntimeException e) {
      Status s = terminatedStatus();
      callback.failed(s != null ? s
          : Status.UNAVAILABLE.withDescription("cannot open a stream").withCause(e));
      return;
    } finally {
      synchronized (openerLock) {
        openerThread = null;
      }
      Thread.interrupted(); // an interrupt delivered while we were the opener
    }
    deliver(stream, callback);
  }

  private static void deliver(QuicStream stream, OpenCallback callback) {
    if (!callback.opened(stream)) {
      stream.resetStream(Wire.errorCode(Status.CANCELLED));
      stream.abortReading(Wire.errorCode(Status.CANCELLED));
    }
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
    byte[] frame = HeaderBlock.encodeFrame(Wire.FRAME_SETTINGS, metadata, null, null, prefix);
    controlWriter.execute(() -> {
      try {
        QuicStream control = quic.createStream(false);
        KwikSendFix.apply(control);
        controlOut = control.getOutputStream();
        controlOut.write(frame);
      } catch (IOException | RuntimeException e) {
        handleControlWriteFailure(e);
      }
    });
  }

  private void sendGoAway(int flags) {
    writeControl(new byte[] {Wire.FRAME_GOAWAY, 1, (byte) flags});
  }

  private void writeControl(byte[] frame) {
    controlWriter.execute(() -> {
      if (controlOut == null) {
        return; // SETTINGS was never sent: the connection failed during the handshake
      }
      try {
        controlOut.write(frame);
      } catch (IOException | RuntimeException e) {
        handleControlWriteFailure(e);
      }
    });
  }

  private void handleControlWriteFailure(Exception e) {
    if (terminatedStatus() == null) {
      log.log(Level.FINE, id + ": control stream write failed", e);
      closeWithError(Wire.PROTOCOL_ERROR, "control stream write failed");
    }
  }

  private void readControl(QuicStream stream) {
    InputStream in =
        new BufferedInputStream(new StreamReader.RaceSafeInput(stream.getInputStream()), 512);
    try {
      boolean first = true;
      while (true) {
        long type = Varint.read(in);
        if (type < 0) {
          throw new EOFException("peer closed its control stream");
        }
        long length = Varint.read(in);
        if (length < 0) {
          throw new EOFException("control frame truncated");
        }
        if (length > Wire.MAX_CONTROL_FRAME_SIZE) {
          throw new ProtocolException("control frame of " + length + " bytes is over the limit");
        }
        byte[] payload = in.readNBytes((int) length);
        if (payload.length != length) {
          throw new EOFException("control frame truncated");
        }
        if (first != (type == Wire.FRAME_SETTINGS)) {
          throw new ProtocolException(first ? "first control frame is not SETTINGS"
              : "SETTINGS received twice");
        }
        first = false;
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
    } catch (ProtocolException | MetadataTooLargeException e) {
      log.log(Level.FINE, id + ": control stream protocol error", e);
      closeWithError(Wire.PROTOCOL_ERROR, e.getMessage());
    } catch (IOException e) {
      if (terminatedStatus() == null) {
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
  void sendCancel(QuicStream stream, long code) {
    byte[] payload = new byte[16];
    int n = Varint.write(stream.getStreamId(), payload, 0);
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
