package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.ConnectHandler;
import dev.brpc.quic.QuicAttributes;
import dev.brpc.quic.QuicConnectionListener;
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
import java.net.DatagramSocket;
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
import tech.kwik.core.QuicConnection;
import tech.kwik.core.QuicStream;
import tech.kwik.core.server.ApplicationProtocolConnection;
import tech.kwik.core.server.ApplicationProtocolConnectionFactory;
import tech.kwik.core.server.ServerConnection;
import tech.kwik.core.server.ServerConnectionConfig;
import tech.kwik.core.server.ServerConnector;
import tech.kwik.core.server.impl.ServerConnectorImpl;

/**
 * The listening side: a grpc-java {@link InternalServer} over kwik's {@link ServerConnector}.
 * Each accepted connection waits for the client's SETTINGS, is admitted by the
 * {@link ConnectHandler}, gets a {@link QuicServerTransport} (which owns it) and answers with
 * its own SETTINGS.
 *
 * <p>kwik traps handled here (DESIGN.md section 7): the server configuration is built in full
 * (kwik's builder starts at 0 streams and 0-byte buffers, and without one requires Retry);
 * {@code createConnection} runs on kwik's packet thread, so it only wires objects; the socket
 * is only ever closed by {@code ServerConnector.close()} (kwik exits the JVM on an unexpected
 * socket error), which can block, so it runs once every connection is gone.
 *
 * <p>Thread-safe.
 */
public final class ListeningServer implements InternalServer {
  private static final Logger log = Logger.getLogger(ListeningServer.class.getName());

  /** Everything the public builder collected. */
  public static final class Options {
    public SocketAddress address;
    public KeyStore keyStore;
    public String keyAlias;
    public char[] keyPassword;
    public TransportConfig config = new TransportConfig();
    public ConnectHandler connectHandler;
    public QuicConnectionListener connectionListener;
  }

  private final Options options;
  private final List<? extends ServerStreamTracer.Factory> tracerFactories;
  private final Object lock = new Object();
  @GuardedBy("lock") private ServerConnector connector;
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
    KwikSendFix.requireAvailable();
    KwikReceiveHook.requireAvailable();
    InetSocketAddress requested = (InetSocketAddress) options.address;
    DatagramSocket socket = new PortReleasingSocket(requested.getAddress() == null
        ? new InetSocketAddress(requested.getPort()) : requested);
    try {
      socket.setReceiveBufferSize(4 * 1024 * 1024);
      socket.setSendBufferSize(4 * 1024 * 1024);
    } catch (IOException e) {
      log.log(Level.FINE, "cannot enlarge UDP buffers", e);
    }
    TransportConfig config = options.config;
    long window = config.streamReceiveWindow;
    ServerConnectionConfig connectionConfig = ServerConnectionConfig.builder()
        .maxIdleTimeout((int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(config.idleTimeoutNanos)))
        .maxOpenPeerInitiatedBidirectionalStreams(config.maxConcurrentCallsPerConnection)
        .maxOpenPeerInitiatedUnidirectionalStreams(2)
        .maxBidirectionalStreamBufferSize(window)
        .maxUnidirectionalStreamBufferSize(Wire.MAX_CONTROL_FRAME_SIZE * 2)
        .maxConnectionBufferSize(window * 10)
        .retryRequired(false)
        .build();
    ServerConnector c;
    try {
      c = ServerConnector.builder()
          .withSocket(socket)
          .withKeyStore(options.keyStore, options.keyAlias, options.keyPassword)
          .withConfiguration(connectionConfig)
          .withLogger(KwikLogger.INSTANCE)
          .build();
    } catch (Exception e) {
      socket.close(); // kwik never saw it
      throw new IOException("cannot start the QUIC server: " + e.getMessage(), e);
    }
    c.registerApplicationProtocol(Wire.ALPN, new Factory());
    synchronized (lock) {
      this.listener = listener;
      this.connector = c;
      this.boundAddress = (InetSocketAddress) socket.getLocalSocketAddress();
    }
    c.start();
  }

  private final class Factory implements ApplicationProtocolConnectionFactory {
    @Override
    public ApplicationProtocolConnection createConnection(String protocol, QuicConnection quic) {
      // On kwik's packet-processing thread: wire objects up and return.
      InetSocketAddress remote = ((ServerConnection) quic).getInitialRemoteAddress();
      Connection connection;
      synchronized (lock) {
        connection = new Connection(quic, false, remote, boundAddress, options.config);
        if (shutdown) {
          connection.closeWithError(Wire.errorCode(Status.UNAVAILABLE), "server is shutting down");
          return null;
        }
        connections.add(connection);
      }
      Tracker tracker = new Tracker(connection);
      connection.addListener(tracker);
      SharedExecutors.timer().schedule(() -> {
        if (!connection.peerSettings.isDone()) {
          connection.closeWithError(Wire.errorCode(Status.DEADLINE_EXCEEDED),
              "no SETTINGS within the handshake timeout");
        }
      }, options.config.handshakeTimeoutNanos, TimeUnit.NANOSECONDS);
      return new ApplicationProtocolConnection() {
        @Override
        public void acceptPeerInitiatedStream(QuicStream stream) {
          connection.onPeerStream(stream);
        }
      };
    }

    @Override
    public int maxConcurrentPeerInitiatedBidirectionalStreams() {
      return options.config.maxConcurrentCallsPerConnection;
    }

    @Override
    public int maxConcurrentPeerInitiatedUnidirectionalStreams() {
      return 2;
    }
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
    ServerConnector c;
    synchronized (lock) {
      if (shutdown) {
        return;
      }
      shutdown = true;
      l = listener;
      c = connector;
      closeNow = connections.isEmpty();
    }
    // From now on kwik answers new connections with CONNECTION_REFUSED at once. Otherwise it
    // goes on accepting them until close(): clients that reconnect as soon as the server goes
    // away start handshakes that nobody completes, and close() waits for each of those to
    // idle out (up to 30 s), holding the port, so a restart on the same port waits too.
    if (c instanceof ServerConnectorImpl) {
      ((ServerConnectorImpl) c).stopAcceptingNewConnections();
    }
    if (closeNow) {
      closeConnector();
    }
    if (l != null) {
      l.serverShutdown();
    }
  }

  private void closeConnector() {
    ServerConnector c;
    synchronized (lock) {
      if (connectorClosed || connector == null) {
        return;
      }
      connectorClosed = true;
      c = connector;
    }
    // Blocks until kwik's registry is empty (connections closing linger ~3 PTO).
    c.close();
  }

  /**
   * A UDP socket whose {@code close()} returns only once its port is free again. The JDK closes
   * a socket that another thread is blocked receiving on lazily: the port stays bound until
   * that thread (kwik's receiver) has left {@code receive}, so a server that reports itself
   * shut down could still hold its port and a new server on it fails with "Address already in
   * use". Here close waits (bounded) for receivers to leave.
   *
   * <p>Thread-safe.
   */
  private static final class PortReleasingSocket extends DatagramSocket {
    private static final long CLOSE_WAIT_MILLIS = 1000;
    private final Object receiveLock = new Object();
    @GuardedBy("receiveLock") private int receiving;

    PortReleasingSocket(SocketAddress address) throws java.net.SocketException {
      super(address);
    }

    @Override
    public void receive(java.net.DatagramPacket packet) throws IOException {
      synchronized (receiveLock) {
        receiving++;
      }
      try {
        super.receive(packet);
      } finally {
        synchronized (receiveLock) {
          receiving--;
          receiveLock.notifyAll();
        }
      }
    }

    @Override
    public void close() {
      super.close(); // wakes a blocked receive, which then releases the port
      long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(CLOSE_WAIT_MILLIS);
      synchronized (receiveLock) {
        long left;
        while (receiving > 0 && (left = deadline - System.nanoTime()) > 0) {
          try {
            TimeUnit.NANOSECONDS.timedWait(receiveLock, left);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
          }
        }
      }
    }
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
