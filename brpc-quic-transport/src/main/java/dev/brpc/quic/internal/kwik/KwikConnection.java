package dev.brpc.quic.internal.kwik;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.engine.CloseInfo;
import dev.brpc.quic.engine.ConnectionHandler;
import dev.brpc.quic.engine.ConnectionStats;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineLimits;
import dev.brpc.quic.engine.StreamException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.ConnectionTerminatedEvent;
import tech.kwik.core.QuicConnection;
import tech.kwik.core.QuicStream;
import tech.kwik.core.Statistics;

/**
 * A kwik connection behind the engine seam.
 *
 * <p>kwik delivers the peer's streams on its callback thread (one per connection), and its
 * termination on that thread too; both go to the handler at once, which never blocks. Streams
 * that arrive before {@link #start} wait here. kwik's {@code createStream} blocks while the
 * peer's stream credit is used up, so {@link #openStream} first tries without waiting ({@link
 * KwikStreams}) and otherwise queues the request for one opener task on {@link
 * KwikThreads#io()}, which a close interrupts (kwik's {@code createStream} is not woken by
 * one).
 *
 * <p>Thread-safe.
 */
final class KwikConnection implements EngineConnection {
  private static final Logger log = Logger.getLogger(KwikConnection.class.getName());

  final QuicConnection quic;
  final EngineLimits limits;
  private final InetSocketAddress remoteAddress;
  private volatile InetSocketAddress localAddress;
  /** A dialer's own socket, which counts what it receives; null on a server. */
  private volatile HandshakeSplittingSocket socket;

  private final Object lock = new Object();
  @GuardedBy("lock") private ConnectionHandler handler;
  /** {@link #start} is delivering the streams that came before it. */
  @GuardedBy("lock") private boolean delivering;
  @GuardedBy("lock") private final List<KwikStream> early = new ArrayList<>();
  @GuardedBy("lock") private CloseInfo closeInfo;
  @GuardedBy("lock") private boolean closeDelivered;
  /** What this side's close said, for the close kwik reports afterwards. */
  @GuardedBy("lock") private CloseInfo localClose;
  @GuardedBy("lock") private final ArrayDeque<PendingOpen> opens = new ArrayDeque<>();
  @GuardedBy("lock") private boolean openerRunning;
  @GuardedBy("lock") private Thread openerThread;

  private static final class PendingOpen {
    final boolean bidirectional;
    final OpenCallback callback;

    PendingOpen(boolean bidirectional, OpenCallback callback) {
      this.bidirectional = bidirectional;
      this.callback = callback;
    }
  }

  /**
   * Wires itself to {@code quic}'s events. On a dialed connection, call before {@code
   * connect()}: kwik drops streams that arrive before a callback is set.
   */
  KwikConnection(QuicConnection quic, InetSocketAddress remoteAddress,
      InetSocketAddress localAddress, EngineLimits limits) {
    this.quic = quic;
    this.remoteAddress = remoteAddress;
    this.localAddress = localAddress;
    this.limits = limits;
    quic.setConnectionListener(this::onTerminated);
  }

  /** A dialed connection's socket, for {@link #stats}. */
  void socket(HandshakeSplittingSocket socket) {
    this.socket = socket;
  }

  void localAddress(InetSocketAddress address) {
    localAddress = address;
  }

  @Override
  public void start(ConnectionHandler handler) {
    synchronized (lock) {
      if (this.handler != null) {
        throw new IllegalStateException("already started");
      }
      this.handler = handler;
      delivering = true;
    }
    while (true) {
      KwikStream s;
      synchronized (lock) {
        if (early.isEmpty()) {
          delivering = false;
          break;
        }
        s = early.remove(0);
      }
      handler.peerStreamOpened(s);
    }
    deliverClose();
  }

  /** A stream the peer opened; kwik's callback thread. */
  void onPeerStream(QuicStream stream) {
    if (stream.isBidirectional()) {
      KwikSendFix.apply(stream);
    }
    KwikStream s = new KwikStream(this, stream, false);
    ConnectionHandler h;
    synchronized (lock) {
      if (handler == null || delivering) {
        early.add(s);
        return;
      }
      h = handler;
    }
    h.peerStreamOpened(s);
  }

  /** kwik's termination event; kwik's callback thread. */
  private void onTerminated(ConnectionTerminatedEvent event) {
    CloseInfo info;
    synchronized (lock) {
      info = localClose;
    }
    if (event.hasApplicationError() && event.closedByPeer()) {
      info = new CloseInfo(CloseInfo.Kind.PEER_APPLICATION, event.applicationErrorCode(),
          peerReason(event));
    } else if (event.closedByPeer()) {
      info = new CloseInfo(CloseInfo.Kind.PEER_TRANSPORT,
          event.hasTransportError() ? event.transportErrorCode() : -1,
          transportReason(event.errorDescription()));
    } else if (event.closeReason() == ConnectionTerminatedEvent.CloseReason.IdleTimeout) {
      info = new CloseInfo(CloseInfo.Kind.IDLE_TIMEOUT, -1, "no packets for the idle timeout");
    } else if (event.closeReason() == ConnectionTerminatedEvent.CloseReason.ConnectionLost) {
      info = new CloseInfo(CloseInfo.Kind.LOST, -1, "probes not answered");
    } else if (event.closeReason() == ConnectionTerminatedEvent.CloseReason.StatelessReset) {
      info = new CloseInfo(CloseInfo.Kind.LOST, -1, "stateless reset from the peer");
    } else if (info == null) {
      info = new CloseInfo(event.hasError() ? CloseInfo.Kind.INTERNAL : CloseInfo.Kind.LOCAL,
          event.hasTransportError() ? event.transportErrorCode() : -1,
          event.errorDescription());
    }
    terminate(info);
  }

  /**
   * The reason phrase the peer's CONNECTION_CLOSE carried. kwik only exposes it wrapped, as
   * {@code "Application error: <code> (<reason>)"}; the code is kept apart.
   */
  static String peerReason(ConnectionTerminatedEvent event) {
    String d = event.errorDescription();
    String prefix = "Application error: " + event.applicationErrorCode();
    if (d == null || !d.startsWith(prefix)) {
      return d;
    }
    String rest = d.substring(prefix.length());
    return rest.startsWith(" (") && rest.endsWith(")") ? rest.substring(2, rest.length() - 1)
        : "";
  }

  /**
   * The peer's reason phrase out of kwik's {@code "Transport error: <NAME> (<reason>)"}: the
   * code is kept apart, and named by the transport.
   */
  static String transportReason(String description) {
    if (description == null) {
      return "";
    }
    java.util.regex.Matcher m = java.util.regex.Pattern
        .compile("^Transport error: \\S+(?: \\((.*)\\))?$").matcher(description);
    return m.matches() ? (m.group(1) == null ? "" : m.group(1)) : description;
  }

  /** The connection ended (or never came up): fails what waits and tells the handler once. */
  void terminate(CloseInfo info) {
    List<PendingOpen> failed;
    synchronized (lock) {
      if (closeInfo != null) {
        return;
      }
      closeInfo = info;
      failed = new ArrayList<>(opens);
      opens.clear();
      if (openerThread != null) {
        openerThread.interrupt(); // only while createStream runs: see runOpener
      }
    }
    // Readers waiting for bytes (a call before its HEADERS, a drain) learn it now.
    KwikReceiveHook.connectionClosed(quic);
    IOException gone = closedException();
    for (PendingOpen p : failed) {
      p.callback.failed(gone);
    }
    deliverClose();
  }

  private void deliverClose() {
    ConnectionHandler h;
    CloseInfo info;
    synchronized (lock) {
      if (closeInfo == null || handler == null || delivering || closeDelivered) {
        return;
      }
      closeDelivered = true;
      h = handler;
      info = closeInfo;
    }
    h.closed(info);
  }

  boolean terminated() {
    synchronized (lock) {
      return closeInfo != null;
    }
  }

  private IOException closedException() {
    CloseInfo info;
    synchronized (lock) {
      info = closeInfo;
    }
    return new StreamException(StreamException.Kind.CONNECTION_CLOSED, -1,
        "connection closed" + (info == null ? "" : " (" + info.kind() + ")"));
  }

  @Override
  public void openStream(boolean bidirectional, OpenCallback callback) {
    boolean inline;
    synchronized (lock) {
      if (closeInfo != null) {
        inline = false;
      } else {
        inline = opens.isEmpty();
        if (!inline) {
          opens.add(new PendingOpen(bidirectional, callback));
          return;
        }
      }
    }
    if (!inline) {
      callback.failed(closedException());
      return;
    }
    QuicStream stream = KwikStreams.tryCreate(quic, bidirectional);
    if (stream != null) {
      deliver(stream, callback);
      return;
    }
    boolean start;
    synchronized (lock) {
      if (closeInfo != null) {
        start = false;
      } else {
        opens.add(new PendingOpen(bidirectional, callback));
        start = !openerRunning;
        openerRunning = true;
        callback = null;
      }
    }
    if (callback != null) {
      callback.failed(closedException());
    } else if (start) {
      KwikThreads.io().execute(this::runOpener);
    }
  }

  /** Opens the queued streams in order, blocking in kwik while the peer's credit is used up. */
  private void runOpener() {
    while (true) {
      PendingOpen p;
      synchronized (lock) {
        p = opens.peek();
        if (p == null || closeInfo != null) {
          openerRunning = false;
          return; // terminate() failed whatever was queued
        }
        openerThread = Thread.currentThread();
      }
      QuicStream stream = null;
      IOException failure = null;
      boolean mine;
      try {
        stream = quic.createStream(p.bidirectional);
      } catch (IOException | RuntimeException e) {
        failure = new IOException("cannot open a stream", e);
      } finally {
        synchronized (lock) {
          openerThread = null;
          mine = opens.remove(p); // false if terminate() took it and failed it
        }
        Thread.interrupted(); // an interrupt from terminate() while we were the opener
      }
      if (!mine) {
        if (stream != null) {
          stream.resetStream(0); // the connection is gone
        }
      } else if (stream != null) {
        deliver(stream, p.callback);
      } else {
        p.callback.failed(terminated() ? closedException() : failure);
      }
    }
  }

  private void deliver(QuicStream stream, OpenCallback callback) {
    KwikSendFix.apply(stream);
    callback.opened(new KwikStream(this, stream, true));
  }

  @Override
  public void close(long applicationErrorCode, String reason) {
    synchronized (lock) {
      if (localClose == null) {
        localClose = new CloseInfo(CloseInfo.Kind.LOCAL, applicationErrorCode, reason);
      }
    }
    try {
      quic.close(applicationErrorCode, reason == null ? "" : reason);
    } catch (RuntimeException e) {
      log.log(Level.FINE, "close failed", e);
    }
  }

  @Override
  public InetSocketAddress localAddress() {
    return localAddress;
  }

  @Override
  public InetSocketAddress remoteAddress() {
    return remoteAddress;
  }

  @Override
  public ConnectionStats stats() {
    try {
      Statistics s = quic.getStats();
      HandshakeSplittingSocket own = socket;
      return new ConnectionStats(TimeUnit.MILLISECONDS.toNanos(s.smoothedRtt()), s.bytesSent(),
          own == null ? -1 : own.bytesReceived(), s.packetsSent(), -1, s.lostPackets());
    } catch (RuntimeException e) {
      return ConnectionStats.UNKNOWN;
    }
  }

  @Override
  public String describe() {
    return KwikDiagnostics.describe(quic);
  }

  @Override
  public String toString() {
    return "kwik connection to " + remoteAddress;
  }
}
