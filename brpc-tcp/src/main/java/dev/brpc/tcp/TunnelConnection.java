package dev.brpc.tcp;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.engine.CloseInfo;
import dev.brpc.quic.engine.ConnectionHandler;
import dev.brpc.quic.engine.ConnectionStats;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One tunnel connection: the Connect call (its control frames) and the Stream calls of its
 * streams, with QUIC's stream numbering and stream credit (PROTOCOL.md, section 8).
 *
 * <p>Thread-safe. State changes under the connection's lock; callbacks into the transport run
 * after it is released.
 */
final class TunnelConnection implements EngineConnection {
  private static final Logger log = Logger.getLogger(TunnelConnection.class.getName());

  /** Opens the call of a stream this side opened (a dialer) or asks the peer to (a server). */
  interface Opener {
    /** Starts the stream's call now; null to wait for the peer's ATTACH (a server). */
    Pipe open(TunnelStream stream);
  }

  private final boolean dialer;
  final byte[] token;
  private final Pipe control;
  private final Opener opener;
  private final long window;
  private final int maxPeerBidi;
  private final int maxPeerUni;
  private final InetSocketAddress localAddress;
  private final InetSocketAddress remoteAddress;
  private final Runnable onClosed;
  private final Object lock = new Object();
  @GuardedBy("lock") private ConnectionHandler handler;
  @GuardedBy("lock") private final List<TunnelStream> early = new ArrayList<>();
  @GuardedBy("lock") private CloseInfo closeInfo;
  @GuardedBy("lock") private boolean closeDelivered;
  @GuardedBy("lock") private final Map<Long, TunnelStream> streams = new HashMap<>();
  // this side opens: how many it may (peer's credit) and has
  @GuardedBy("lock") private long creditBidi;
  @GuardedBy("lock") private long creditUni;
  @GuardedBy("lock") private long openedBidi;
  @GuardedBy("lock") private long openedUni;
  @GuardedBy("lock") private final ArrayDeque<OpenCallback> waitingBidi = new ArrayDeque<>();
  @GuardedBy("lock") private final ArrayDeque<OpenCallback> waitingUni = new ArrayDeque<>();
  // the peer opens: how many it has and this side retired
  @GuardedBy("lock") private long peerNextBidi;
  @GuardedBy("lock") private long peerNextUni;
  @GuardedBy("lock") private final java.util.TreeSet<Long> peerAheadBidi =
      new java.util.TreeSet<>();
  @GuardedBy("lock") private final java.util.TreeSet<Long> peerAheadUni =
      new java.util.TreeSet<>();
  @GuardedBy("lock") private long retiredBidi;
  @GuardedBy("lock") private long retiredUni;
  @GuardedBy("lock") private long announcedBidi;
  @GuardedBy("lock") private long announcedUni;

  TunnelConnection(boolean dialer, byte[] token, Pipe control, Opener opener, long window,
      int maxPeerBidi, int maxPeerUni, long creditBidi, long creditUni,
      InetSocketAddress localAddress, InetSocketAddress remoteAddress, Runnable onClosed) {
    this.dialer = dialer;
    this.token = token;
    this.control = control;
    this.opener = opener;
    this.window = window;
    this.maxPeerBidi = maxPeerBidi;
    this.maxPeerUni = maxPeerUni;
    this.creditBidi = creditBidi;
    this.creditUni = creditUni;
    this.localAddress = localAddress;
    this.remoteAddress = remoteAddress;
    this.onClosed = onClosed;
  }

  @Override
  public void start(ConnectionHandler h) {
    List<TunnelStream> arrived;
    CloseInfo closed;
    synchronized (lock) {
      handler = h;
      arrived = new ArrayList<>(early);
      early.clear();
      closed = closeInfo;
      closeDelivered = closed != null;
    }
    for (TunnelStream s : arrived) {
      h.peerStreamOpened(s);
    }
    if (closed != null) {
      h.closed(closed);
    }
  }

  @Override
  public void openStream(boolean bidirectional, OpenCallback callback) {
    TunnelStream s;
    synchronized (lock) {
      if (closeInfo != null) {
        s = null;
      } else if (bidirectional ? openedBidi < creditBidi && waitingBidi.isEmpty()
          : openedUni < creditUni && waitingUni.isEmpty()) {
        s = newLocalStream(bidirectional);
      } else {
        (bidirectional ? waitingBidi : waitingUni).add(callback);
        return;
      }
    }
    if (s == null) {
      callback.failed(new IOException("connection closed"));
      return;
    }
    launch(s, callback);
  }

  @GuardedBy("lock")
  private TunnelStream newLocalStream(boolean bidirectional) {
    long n = bidirectional ? openedBidi++ : openedUni++;
    long id = (n << 2) | (bidirectional ? 0 : 2) | (dialer ? 0 : 1);
    TunnelStream s = new TunnelStream(this, id, true, window);
    streams.put(id, s);
    return s;
  }

  private void launch(TunnelStream s, OpenCallback callback) {
    Pipe p;
    try {
      p = opener.open(s);
    } catch (RuntimeException e) {
      log.log(Level.WARNING, "cannot open a tunnel stream", e);
      retired(s);
      callback.failed(new IOException("cannot open a stream: " + e, e));
      return;
    }
    if (p != null) {
      s.attach(p);
    }
    callback.opened(s);
  }

  /**
   * The peer's stream {@code id} arrived with its call ({@code p}); or, for a stream this side
   * opened (a server's), the peer's call for it. Returns the stream, or null after closing the
   * connection for a protocol violation.
   */
  TunnelStream attached(long id, Pipe p) {
    boolean peerOpened = (id & 0x1) == (dialer ? 1 : 0);
    TunnelStream s;
    ConnectionHandler h;
    String violation = null;
    synchronized (lock) {
      if (closeInfo != null) {
        p.abort("connection closed");
        return null;
      }
      if (!peerOpened) {
        s = streams.get(id);
        if (s == null) {
          violation = "ATTACH for stream " + id + ", which this side did not open";
        }
      } else {
        boolean bidi = (id & 0x2) == 0;
        long n = id >>> 2;
        long limit = bidi ? maxPeerBidi + announcedBidi : maxPeerUni + announcedUni;
        // Calls may arrive out of id order (the peer starts them on several threads): each id
        // once, below the credit. Seen ids above the lowest unseen one are kept until it comes.
        long next = bidi ? peerNextBidi : peerNextUni;
        java.util.TreeSet<Long> ahead = bidi ? peerAheadBidi : peerAheadUni;
        if (n < next || ahead.contains(n)) {
          violation = "stream " + id + " opened twice";
        } else if (n >= limit) {
          violation = "stream " + id + " beyond the stream credit (STREAM_LIMIT_ERROR)";
        }
        s = null;
        if (violation == null) {
          ahead.add(n);
          while (ahead.remove(next)) {
            next++;
          }
          if (bidi) {
            peerNextBidi = next;
          } else {
            peerNextUni = next;
          }
          s = new TunnelStream(this, id, false, window);
          streams.put(id, s);
        }
      }
      h = handler;
      if (violation == null && peerOpened && h == null) {
        early.add(s);
      }
    }
    if (violation != null) {
      p.abort(violation);
      closeForViolation(violation);
      return null;
    }
    s.attach(p);
    if (peerOpened && h != null) {
      h.peerStreamOpened(s);
    }
    return s;
  }

  /** A stream's call is over; the peer's streams give their credit back. */
  void retired(TunnelStream s) {
    if (!s.markRetired()) {
      return;
    }
    byte[] update = null;
    synchronized (lock) {
      streams.remove(s.id());
      if (!s.isLocal() && closeInfo == null) {
        boolean bidi = s.isBidirectional();
        long retired = bidi ? ++retiredBidi : ++retiredUni;
        long announced = bidi ? announcedBidi : announcedUni;
        int max = bidi ? maxPeerBidi : maxPeerUni;
        if (retired - announced >= Math.max(1, max / 8)) {
          if (bidi) {
            announcedBidi = retired;
          } else {
            announcedUni = retired;
          }
          update = Tunnel.frame(Tunnel.MAX_STREAMS, bidi ? 1 : 0, max + retired);
        }
      }
    }
    if (update != null) {
      control.send(update);
    }
  }

  /** A frame on the Connect call, after the handshake. */
  void onControlFrame(byte[] f) {
    try {
      if (f.length == 0) {
        throw new Tunnel.Malformed("empty control frame");
      }
      Tunnel.Reader r = new Tunnel.Reader(f, 1);
      switch (f[0]) {
        case Tunnel.OPEN -> {
          throw new Tunnel.Malformed("OPEN is the server's frame");
        }
        case Tunnel.MAX_STREAMS -> {
          boolean bidi = r.u8() == 1;
          long total = r.varint();
          r.end();
          raiseCredit(bidi, total);
        }
        case Tunnel.CLOSE -> {
          boolean transport = r.u8() == 1;
          long code = r.varint();
          String reason = r.rest();
          closeAll(new CloseInfo(transport ? CloseInfo.Kind.PEER_TRANSPORT
              : CloseInfo.Kind.PEER_APPLICATION, code, reason));
          control.finish();
        }
        default -> throw new Tunnel.Malformed("unknown control frame type " + f[0]);
      }
    } catch (Tunnel.Malformed e) {
      closeForViolation(e.getMessage());
    }
  }

  private void raiseCredit(boolean bidi, long total) {
    List<OpenCallback> ready = new ArrayList<>();
    List<TunnelStream> opened = new ArrayList<>();
    synchronized (lock) {
      ArrayDeque<OpenCallback> waiting = bidi ? waitingBidi : waitingUni;
      if (bidi) {
        creditBidi = Math.max(creditBidi, total);
      } else {
        creditUni = Math.max(creditUni, total);
      }
      while (!waiting.isEmpty() && closeInfo == null
          && (bidi ? openedBidi < creditBidi : openedUni < creditUni)) {
        ready.add(waiting.poll());
        opened.add(newLocalStream(bidi));
      }
    }
    for (int i = 0; i < ready.size(); i++) {
      launch(opened.get(i), ready.get(i));
    }
  }

  /** The peer broke the protocol: close as QUIC would, with PROTOCOL_VIOLATION. */
  void closeForViolation(String why) {
    log.log(Level.FINE, "tunnel protocol violation: {0}", why);
    boolean first;
    synchronized (lock) {
      first = closeInfo == null;
    }
    if (first) {
      control.send(closeFrame(true, 0xa, why));
      control.finish();
      closeAll(new CloseInfo(CloseInfo.Kind.INTERNAL, 0xa, "protocol violation: " + why));
    }
  }

  static byte[] closeFrame(boolean transport, long code, String reason) {
    return Tunnel.frame(Tunnel.CLOSE, Tunnel.utf8(reason), transport ? 1 : 0, code);
  }

  /** The Connect call failed or ended without a CLOSE: the connection is lost. */
  void onControlClosed(CloseInfo info) {
    closeAll(info);
    control.abort(info.reason());
  }

  @Override
  public void close(long applicationErrorCode, String reason) {
    synchronized (lock) {
      if (closeInfo != null) {
        return;
      }
    }
    control.send(closeFrame(false, applicationErrorCode, reason));
    control.finish();
    closeAll(new CloseInfo(CloseInfo.Kind.LOCAL, applicationErrorCode, reason));
  }

  private void closeAll(CloseInfo info) {
    List<TunnelStream> all;
    List<OpenCallback> waiting;
    ConnectionHandler h;
    synchronized (lock) {
      if (closeInfo != null) {
        return;
      }
      closeInfo = info;
      all = new ArrayList<>(streams.values());
      all.addAll(early);
      waiting = new ArrayList<>(waitingBidi);
      waiting.addAll(waitingUni);
      waitingBidi.clear();
      waitingUni.clear();
      h = closeDelivered ? null : handler;
      closeDelivered = h != null;
    }
    String why = info.reason().isEmpty() ? info.kind().toString() : info.reason();
    for (OpenCallback c : waiting) {
      c.failed(new IOException("connection closed: " + why));
    }
    boolean sentClose = info.kind() == CloseInfo.Kind.LOCAL
        || info.kind() == CloseInfo.Kind.INTERNAL;
    for (TunnelStream s : all) {
      s.connectionClosed(why, sentClose ? 2 : 0);
    }
    if (h != null) {
      h.closed(info);
    }
    onClosed.run();
  }

  boolean isClosed() {
    synchronized (lock) {
      return closeInfo != null;
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
    return ConnectionStats.UNKNOWN;
  }

  @Override
  public String describe() {
    synchronized (lock) {
      return "tcp tunnel " + (dialer ? "dialer" : "server") + " to " + remoteAddress
          + (closeInfo != null ? " closed (" + closeInfo + ")" : "") + "; credit bidi "
          + openedBidi + "/" + creditBidi + " uni " + openedUni + "/" + creditUni
          + ", waiting " + waitingBidi.size() + "+" + waitingUni.size() + "; streams "
          + streams.values();
    }
  }

  @Override
  public String toString() {
    return "tcp tunnel to " + remoteAddress;
  }
}
