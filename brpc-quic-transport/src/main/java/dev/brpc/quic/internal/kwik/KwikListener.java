package dev.brpc.quic.internal.kwik;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.engine.ConnectionAcceptor;
import dev.brpc.quic.engine.EngineListener;
import dev.brpc.quic.engine.ListenSpec;
import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
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
 * kwik's {@link ServerConnector} behind the engine seam.
 *
 * <p>kwik traps handled here (DESIGN.md section 7): the server configuration is built in full
 * (kwik's builder starts at 0 streams and 0-byte buffers, and without one requires Retry);
 * {@code createConnection} runs on kwik's packet thread, so it only wires objects; the socket
 * is only ever closed by {@code ServerConnector.close()} (on an unexpected socket error kwik
 * would exit the JVM; {@link KwikHardening#keepJvmUp} closes the connector instead), which
 * blocks while connections linger (at most {@link #CLOSE_WAIT} here), and the port is released only once
 * kwik's receiver thread has left {@code receive} ({@link PortReleasingSocket}).
 *
 * <p>Thread-safe.
 */
final class KwikListener implements EngineListener {
  private final ServerConnector connector;
  private final InetSocketAddress boundAddress;
  private final Object lock = new Object();
  @GuardedBy("lock") private boolean closed;

  private KwikListener(ServerConnector connector, InetSocketAddress boundAddress) {
    this.connector = connector;
    this.boundAddress = boundAddress;
  }

  static KwikListener start(ListenSpec spec, ConnectionAcceptor acceptor) throws IOException {
    InetSocketAddress requested = spec.address();
    DatagramSocket socket = new PortReleasingSocket(requested.getAddress() == null
        ? new InetSocketAddress(requested.getPort()) : requested);
    try {
      socket.setReceiveBufferSize(4 * 1024 * 1024);
      socket.setSendBufferSize(4 * 1024 * 1024);
    } catch (IOException e) {
      Logger.getLogger(KwikListener.class.getName()).log(Level.FINE, "cannot enlarge UDP buffers",
          e);
    }
    long window = spec.limits().streamReceiveWindow();
    ServerConnectionConfig connectionConfig = ServerConnectionConfig.builder()
        .maxIdleTimeout((int) Math.max(1,
            TimeUnit.NANOSECONDS.toMillis(spec.limits().idleTimeoutNanos())))
        .maxOpenPeerInitiatedBidirectionalStreams(spec.limits().maxPeerBidiStreams())
        .maxOpenPeerInitiatedUnidirectionalStreams(spec.limits().maxPeerUniStreams())
        .maxBidirectionalStreamBufferSize(window)
        .maxUnidirectionalStreamBufferSize(window)
        .maxConnectionBufferSize(spec.limits().connectionReceiveWindow())
        .retryRequired(false)
        .build();
    ServerConnector c;
    try {
      c = ServerConnector.builder()
          .withSocket(socket)
          .withKeyStore(spec.keyStore(), spec.keyAlias(), spec.keyPassword())
          .withConfiguration(connectionConfig)
          .withLogger(KwikLogger.INSTANCE)
          .build();
    } catch (Exception e) {
      socket.close(); // kwik never saw it
      throw new IOException("cannot start the QUIC server: " + e.getMessage(), e);
    }
    InetSocketAddress bound = (InetSocketAddress) socket.getLocalSocketAddress();
    ServerConnector connector = c;
    KwikHardening.keepJvmUp(c, failure -> {
      // kwik's receiver thread, ending: the port is dead. Close what is left on another
      // thread (close() blocks while connections linger); the JVM stays up.
      Logger.getLogger(KwikListener.class.getName()).log(Level.SEVERE, "QUIC server on "
          + bound + " stopped: its socket failed; no more connections are received", failure);
      Thread closer = new Thread(connector::close, "brpc-kwik-listener-close");
      closer.setDaemon(true);
      closer.start();
    });
    c.registerApplicationProtocol(spec.alpn(), new ApplicationProtocolConnectionFactory() {
      @Override
      public ApplicationProtocolConnection createConnection(String protocol,
          QuicConnection quic) {
        // On kwik's packet-processing thread: wire objects up and return.
        KwikConnection connection = new KwikConnection(quic,
            ((ServerConnection) quic).getInitialRemoteAddress(), bound, spec.limits());
        acceptor.accepted(connection);
        return new ApplicationProtocolConnection() {
          @Override
          public void acceptPeerInitiatedStream(QuicStream stream) {
            connection.onPeerStream(stream);
          }
        };
      }

      @Override
      public int maxConcurrentPeerInitiatedBidirectionalStreams() {
        return spec.limits().maxPeerBidiStreams();
      }

      @Override
      public int maxConcurrentPeerInitiatedUnidirectionalStreams() {
        return spec.limits().maxPeerUniStreams();
      }
    });
    c.start();
    return new KwikListener(c, bound);
  }

  @Override
  public InetSocketAddress localAddress() {
    return boundAddress;
  }

  @Override
  public void stopAccepting() {
    // From now on kwik answers new connections with CONNECTION_REFUSED at once. Otherwise it
    // goes on accepting them until close(): clients that reconnect as soon as the server goes
    // away start handshakes that nobody completes, and close() waits for each of those to
    // idle out (up to 30 s), holding the port, so a restart on the same port waits too.
    if (connector instanceof ServerConnectorImpl) {
      ((ServerConnectorImpl) connector).stopAcceptingNewConnections();
    }
  }

  @Override
  public void close() {
    synchronized (lock) {
      if (closed) {
        return;
      }
      closed = true;
    }
    stopAccepting();
    closeConnector();
  }

  /**
   * How long close waits for kwik's connections to finish closing. kwik's own {@code close()}
   * waits up to 30 s, and a connection whose dialer gave up mid-handshake (a refused
   * certificate: kwik's client sends nothing) stays in kwik's registry until its idle timeout:
   * {@code Server.shutdownNow()} blocked 30 s after one failed dial ({@code DialFailureTest}).
   * Every connection has been sent its CONNECTION_CLOSE by then; waiting longer only keeps the
   * port.
   */
  private static final java.time.Duration CLOSE_WAIT = java.time.Duration.ofSeconds(3);
  private static final java.lang.reflect.Method CLOSE_WITHIN = closeWithin();

  private static java.lang.reflect.Method closeWithin() {
    try {
      java.lang.reflect.Method m = ServerConnectorImpl.class.getDeclaredMethod("close",
          java.time.Duration.class);
      m.setAccessible(true);
      return m;
    } catch (ReflectiveOperationException | RuntimeException e) {
      Logger.getLogger(KwikListener.class.getName()).log(Level.FINE,
          "kwik's close(Duration) is not reachable; a server's close may wait 30 s", e);
      return null;
    }
  }

  private void closeConnector() {
    if (CLOSE_WITHIN != null && connector instanceof ServerConnectorImpl) {
      try {
        CLOSE_WITHIN.invoke(connector, CLOSE_WAIT);
        return;
      } catch (ReflectiveOperationException e) {
        Logger.getLogger(KwikListener.class.getName()).log(Level.FINE,
            "kwik's close(Duration) failed; closing as kwik does", e);
      }
    }
    connector.close(); // blocks until kwik's registry is empty, up to 30 s
  }

  /**
   * A UDP socket whose {@code close()} returns only once its port is free again. The JDK
   * closes a socket that another thread is blocked receiving on lazily: the port stays bound
   * until that thread (kwik's receiver) has left {@code receive}, so a server that reports
   * itself shut down could still hold its port and a new server on it fails with "Address
   * already in use". Here close waits (bounded) for receivers to leave.
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
}
