package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.ConnectHandler;
import dev.brpc.quic.QuicAttributes;
import dev.brpc.quic.QuicConnectionListener;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineLimits;
import dev.brpc.quic.engine.EngineListener;
import dev.brpc.quic.engine.ListenSpec;
import dev.brpc.quic.engine.QuicEngine;
import io.grpc.Attributes;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalInstrumented;
import io.grpc.Metadata;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.internal.InternalServer;
import io.grpc.internal.ServerListener;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.security.KeyStore;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The listening side: a grpc-java {@link InternalServer} over an engine's {@link
 * EngineListener}. Each accepted connection waits for the client's SETTINGS, is admitted by the
 * {@link ConnectHandler}, gets a {@link QuicServerTransport} (which owns it) and answers with
 * its own SETTINGS. The socket is closed once every connection is gone (closing it may block,
 * so it runs on the io thread that saw the last connection end).
 *
 * <p>Thread-safe.
 */
public final class ListeningServer implements InternalServer {
  private static final Logger log = Logger.getLogger(ListeningServer.class.getName());
  /** Refused and unadmitted connections, for the operator (rate-limited WARNING lines). */
  private final PeerFailureLog failures = new PeerFailureLog(log);

  /** Everything the public builder collected. */
  public static final class Options {
    public SocketAddress address;
    public KeyStore keyStore;
    public String keyAlias;
    public char[] keyPassword;
    public TransportConfig config = new TransportConfig();
    public ConnectHandler connectHandler;
    public QuicConnectionListener connectionListener;
    /** The QUIC engine's name, or null for the default ({@link Engines#choose}). */
    public String engine;
  }

  private final Options options;
  private final List<? extends ServerStreamTracer.Factory> tracerFactories;
  private final Object lock = new Object();
  @GuardedBy("lock") private EngineListener engineListener;
  /** Set by {@link #start}, before any connection is accepted. */
  private volatile String engineName;
  @GuardedBy("lock") private InetSocketAddress boundAddress;
  @GuardedBy("lock") private ServerListener listener;
  @GuardedBy("lock") private boolean shutdown;
  @GuardedBy("lock") private boolean connectorClosed;
  @GuardedBy("lock") private final Set<Connection> connections = new HashSet<>();

  public ListeningServer(Options options,
      List<? extends ServerStreamTracer.Factory> tracerFactories) {
    this.options = options;
    this.tracerFactories = tracerFactories;
  }

  @Override
  public void start(ServerListener listener) throws IOException {
    QuicEngine engine = Engines.choose(options.engine);
    engineName = engine.name();
    TransportConfig config = options.config;
    EngineLimits limits = DialingTransportFactory.limits(config);
    ListenSpec spec = new ListenSpec((InetSocketAddress) options.address, Wire.ALPN,
        options.keyStore, options.keyAlias, options.keyPassword, limits, config.qlogDirectory);
    synchronized (lock) {
      this.listener = listener;
    }
    EngineListener l = engine.listen(spec, this::accepted);
    synchronized (lock) {
      this.engineListener = l;
      this.boundAddress = l.localAddress();
    }
  }

  /** A new connection; on an engine thread: wire objects up and return. */
  private void accepted(EngineConnection engineConnection) {
    Connection connection = new Connection(engineConnection, engineName, false,
        options.config);
    synchronized (lock) {
      if (shutdown) {
        connection.closeWithError(Wire.errorCode(Status.UNAVAILABLE), "server is shutting down");
        return;
      }
      connections.add(connection);
    }
    connection.addListener(new Tracker(connection));
    connection.start();
    SharedExecutors.timer().schedule(() -> {
      if (!connection.peerSettings.isDone() && connection.terminatedStatus() == null) {
        failures.failed(connection.remoteAddress, "closed: no SETTINGS within the handshake"
            + " timeout (" + TimeUnit.NANOSECONDS.toMillis(options.config.handshakeTimeoutNanos)
            + " ms); not a brpc client, or one too slow to admit", null);
        connection.closeWithError(Wire.errorCode(Status.DEADLINE_EXCEEDED),
            "no SETTINGS within the handshake timeout");
      }
    }, options.config.handshakeTimeoutNanos, TimeUnit.NANOSECONDS);
  }

  /** Admits one connection when its SETTINGS arrive, and tracks it until it terminates. */
  private final class Tracker implements Connection.Listener {
    private final Connection connection;
    private volatile PeerConnectionImpl peer;

    Tracker(Connection connection) {
      this.connection = connection;
    }

    @Override
    public void settingsReceived(Metadata peerMetadata) {
      ConnectHandler handler = options.connectHandler;
      ConnectHandler.ConnectResult result;
      try {
        result = handler == null ? ConnectHandler.ConnectResult.accept()
            : handler.onConnect(peerMetadata, connection.remoteAddress);
      } catch (StatusException e) {
        Status s = e.getStatus();
        failures.failed(connection.remoteAddress, "refused: " + s.getCode()
            + (s.getDescription() == null ? "" : ": " + s.getDescription()), e);
        connection.closeWithError(Wire.errorCode(s),
            s.getDescription() == null ? s.getCode().toString() : s.getDescription());
        return;
      } catch (RuntimeException e) {
        log.log(Level.WARNING, "ConnectHandler failed; refusing " + connection, e);
        connection.closeWithError(Wire.errorCode(Status.INTERNAL), "connect handler failed");
        return;
      }
      ServerListener l;
      synchronized (lock) {
        l = listener;
        if (shutdown) {
          l = null;
        }
      }
      if (l == null) {
        connection.closeWithError(Wire.errorCode(Status.UNAVAILABLE), "server is shutting down");
        return;
      }
      Attributes.Builder extra = Attributes.newBuilder()
          .setAll(result.attributes())
          .set(QuicAttributes.PEER_METADATA, peerMetadata);
      if (result.identity() != null) {
        extra.set(QuicAttributes.PEER_IDENTITY, result.identity());
      }
      Attributes extraAttrs = extra.build();
      PeerConnectionImpl p = new PeerConnectionImpl(connection, peerMetadata,
          connection.baseAttributes().setAll(extraAttrs).build());
      peer = p;
      // The listener hears of the peer before the peer hears it is admitted (our SETTINGS), so
      // whatever it registers is in place when the peer's first call arrives.
      QuicConnectionListener cl = options.connectionListener;
      if (cl != null) {
        try {
          cl.connected(p);
        } catch (RuntimeException e) {
          log.log(Level.WARNING, "QuicConnectionListener.connected threw", e);
        }
      }
      QuicServerTransport transport = new QuicServerTransport(connection, true, tracerFactories,
          options.config);
      transport.start(l, extraAttrs);
      connection.sendSettings(result.reply());
    }

    @Override
    public void terminated(Status status) {
      PeerConnectionImpl p = peer;
      if (p != null) {
        p.closed();
        QuicConnectionListener cl = options.connectionListener;
        if (cl != null) {
          try {
            cl.disconnected(p, status);
          } catch (RuntimeException e) {
            log.log(Level.WARNING, "QuicConnectionListener.disconnected threw", e);
          }
        }
      }
      boolean closeConnector;
      synchronized (lock) {
        connections.remove(connection);
        closeConnector = shutdown && connections.isEmpty();
      }
      if (closeConnector) {
        closeConnector();
      }
    }
  }

  @Override
  public void shutdown() {
    ServerListener l;
    boolean closeNow;
    EngineListener e;
    synchronized (lock) {
      if (shutdown) {
        return;
      }
      shutdown = true;
      l = listener;
      e = engineListener;
      closeNow = connections.isEmpty();
    }
    // From now on the engine refuses new connections at once: clients that reconnect as soon
    // as the server goes away must not start handshakes that nobody completes.
    if (e != null) {
      e.stopAccepting();
    }
    if (closeNow) {
      closeConnector();
    }
    if (l != null) {
      l.serverShutdown();
    }
  }

  private void closeConnector() {
    EngineListener e;
    synchronized (lock) {
      if (connectorClosed || engineListener == null) {
        return;
      }
      connectorClosed = true;
      e = engineListener;
    }
    e.close(); // may block while closing connections linger
  }

  @Override
  public SocketAddress getListenSocketAddress() {
    synchronized (lock) {
      return boundAddress != null ? boundAddress : options.address;
    }
  }

  @Override
  public InternalInstrumented<SocketStats> getListenSocketStats() {
    return null;
  }

  @Override
  public List<? extends SocketAddress> getListenSocketAddresses() {
    return Collections.singletonList(getListenSocketAddress());
  }

  @Override
  public List<InternalInstrumented<SocketStats>> getListenSocketStatsList() {
    return null;
  }
}
