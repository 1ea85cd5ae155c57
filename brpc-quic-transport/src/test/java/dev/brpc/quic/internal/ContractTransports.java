package dev.brpc.quic.internal;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.quic.PeerConnection;
import dev.brpc.quic.QuicConnectionListener;
import dev.brpc.quic.SelfSignedCertificate;
import dev.brpc.quic.internal.ContractRecorders.ClientTransportRecorder;
import dev.brpc.quic.internal.ContractRecorders.ServerRecorder;
import dev.brpc.quic.internal.ContractRecorders.ServerTransportRecorder;
import dev.brpc.quic.internal.ContractRecorders.Violations;
import io.grpc.Attributes;
import io.grpc.ChannelLogger;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import io.grpc.internal.ClientTransportFactory.ClientTransportOptions;
import io.grpc.internal.ConnectionClientTransport;
import io.grpc.internal.InternalServer;
import io.grpc.internal.ManagedClientTransport;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Makes the servers and client transports of one {@link TransportContractTest} case, in one
 * direction:
 *
 * <ul>
 *   <li>{@link Direction#FORWARD}: the server is a {@link ListeningServer} on 127.0.0.1 and every
 *       client transport dials it through {@link DialingTransportFactory}: a new QUIC connection,
 *       owned by the client transport, and a new {@link QuicServerTransport} that owns it on the
 *       server side.
 *   <li>{@link Direction#REVERSE}: the server is the dialer's {@link CallbackServer}; every client
 *       transport is an {@link AttachedTransportFactory attached} transport on the accepting side
 *       of a new connection that a background dialing transport opened to a background acceptor.
 *       Calls go from the acceptor to the dialer, as a brpc server calls back into its client.
 *       Neither the attached client transport nor the dialer's guest server transport owns the
 *       connection: it lives until the background dialing transport is shut down.
 * </ul>
 *
 * <p>Everything binds 127.0.0.1 on an ephemeral port and dials "localhost" (kwik checks DNS
 * names, never IP addresses). {@link #close} shuts down the background side and checks that it
 * terminates. Not thread-safe: used by one test thread.
 */
final class ContractTransports {
  /** Which side opens the streams under test. */
  enum Direction { FORWARD, REVERSE }

  /**
   * A small stream window helps find flow-control bugs (grpc-java's suite uses 65 KiB for the
   * same reason; 64 KiB would hide window-update bugs).
   */
  static final int TEST_FLOW_CONTROL_WINDOW = 65 * 1024;

  static final Attributes.Key<String> EAG_ATTR_KEY = Attributes.Key.create("eag-attr");
  static final Attributes EAG_ATTRS = Attributes.newBuilder().set(EAG_ATTR_KEY, "value").build();

  private static final SelfSignedCertificate CERT = SelfSignedCertificate.generate("localhost");
  private static final KeyStore KEY_STORE = keyStore();
  private static final KeyStore TRUST_STORE = Pem.trustStore(List.of(CERT.certificate()));
  private static final String REVERSE_USER_AGENT = "contract-test-reverse";

  static final ChannelLogger NOOP_LOGGER = new ChannelLogger() {
    @Override
    public void log(ChannelLogLevel level, String message) {}

    @Override
    public void log(ChannelLogLevel level, String messageFormat, Object... args) {}
  };

  final Direction direction;
  private final Violations violations;

  // REVERSE only: the background acceptor and the dialing transports that own the connections.
  private ListeningServer acceptor;
  private ServerRecorder acceptorListener;
  private final BlockingQueue<PeerConnection> accepted = new LinkedBlockingQueue<>();
  private final List<ManagedClientTransport> dialers = new ArrayList<>();
  private final List<ClientTransportRecorder> dialerListeners = new ArrayList<>();
  private String lastReverseAuthority;

  ContractTransports(Direction direction, Violations violations) {
    this.direction = direction;
    this.violations = violations;
  }

  /** The settings both sides use. */
  static TransportConfig config() {
    TransportConfig config = new TransportConfig();
    config.streamReceiveWindow = TEST_FLOW_CONTROL_WINDOW;
    config.connectTimeoutNanos = TimeUnit.SECONDS.toNanos(10);
    config.handshakeTimeoutNanos = TimeUnit.SECONDS.toNanos(10);
    return config;
  }

  /** A new, unstarted server that client transports made later by this object can reach. */
  InternalServer newServer(List<ServerStreamTracer.Factory> tracerFactories) {
    if (direction == Direction.REVERSE) {
      return new CallbackServer(tracerFactories, config());
    }
    return newServer(0, tracerFactories);
  }

  /** A new, unstarted listening server on 127.0.0.1:{@code port}. FORWARD only. */
  InternalServer newServer(int port, List<ServerStreamTracer.Factory> tracerFactories) {
    if (direction != Direction.FORWARD) {
      throw new UnsupportedOperationException("a callback server listens on no port");
    }
    ListeningServer.Options options = new ListeningServer.Options();
    options.address = new InetSocketAddress("127.0.0.1", port);
    options.keyStore = KEY_STORE;
    options.keyAlias = Pem.KEY_ALIAS;
    options.keyPassword = Pem.keyPassword();
    options.config = config();
    return new ListeningServer(options, tracerFactories);
  }

  /** The port a FORWARD server listens on. */
  static int portOf(InternalServer server) {
    return ((InetSocketAddress) server.getListenSocketAddress()).getPort();
  }

  /**
   * A new, unstarted client transport to {@code server} (which must be started). REVERSE: this
   * dials a new connection in the background first, so blocks until it is set up.
   */
  ConnectionClientTransport newClientTransport(InternalServer server) throws Exception {
    if (direction == Direction.FORWARD) {
      return newClientTransport(server, config());
    }
    ListeningServer a = acceptor();
    ConnectionClientTransport dialer = dialingFactory((CallbackServer) server, config())
        .newClientTransport(new InetSocketAddress("127.0.0.1", portOf(a)),
            new ClientTransportOptions().setAuthority("localhost:" + portOf(a)),
            NOOP_LOGGER);
    ClientTransportRecorder dialerListener =
        new ClientTransportRecorder(violations, "background dialer");
    dialers.add(dialer);
    dialerListeners.add(dialerListener);
    Runnable r = dialer.start(dialerListener);
    if (r != null) {
      r.run();
    }
    dialerListener.awaitReady();
    PeerConnection peer = ContractRecorders.poll(accepted, "the acceptor to see the connection");
    // The authority a brpc server's channel to this client uses (PeerConnectionImpl).
    lastReverseAuthority = peer.id();
    return new AttachedTransportFactory().newClientTransport(
        ((PeerConnectionImpl) peer).address(),
        new ClientTransportOptions()
            .setAuthority(lastReverseAuthority)
            .setEagAttributes(EAG_ATTRS)
            .setUserAgent(REVERSE_USER_AGENT)
            .setChannelLogger(NOOP_LOGGER),
        NOOP_LOGGER);
  }

  /** A new, unstarted client transport dialing the FORWARD {@code server} with {@code config}. */
  ConnectionClientTransport newClientTransport(InternalServer server, TransportConfig config) {
    if (direction != Direction.FORWARD) {
      throw new UnsupportedOperationException("REVERSE transports ride on existing connections");
    }
    return dialingFactory(null, config).newClientTransport(
        new InetSocketAddress("127.0.0.1", portOf(server)),
        new ClientTransportOptions()
            .setAuthority(testAuthority(server))
            .setEagAttributes(EAG_ATTRS)
            .setChannelLogger(NOOP_LOGGER),
        NOOP_LOGGER);
  }

  /**
   * The authority the server sees on streams of client transports to {@code server}. REVERSE:
   * that of the most recent client transport (each has its own connection, named by its id).
   */
  String testAuthority(InternalServer server) {
    if (direction == Direction.FORWARD) {
      return "localhost:" + portOf(server);
    }
    return lastReverseAuthority;
  }

  /** A factory that dials with {@code config}, trusting the test certificate. */
  static DialingTransportFactory dialingFactory(CallbackServer callbacks, TransportConfig config) {
    DialingTransportFactory.Options options = new DialingTransportFactory.Options();
    options.trustStore = TRUST_STORE;
    options.config = config;
    options.callbackServer = callbacks;
    return new DialingTransportFactory(options);
  }

  private ListeningServer acceptor() throws IOException {
    if (acceptor == null) {
      ListeningServer.Options options = new ListeningServer.Options();
      options.address = new InetSocketAddress("127.0.0.1", 0);
      options.keyStore = KEY_STORE;
      options.keyAlias = Pem.KEY_ALIAS;
      options.keyPassword = Pem.keyPassword();
      options.config = config();
      options.connectionListener = new QuicConnectionListener() {
        @Override
        public void connected(PeerConnection connection) {
          accepted.add(connection);
        }
      };
      acceptor = new ListeningServer(options, List.of());
      acceptorListener = new ServerRecorder(violations);
      acceptor.start(acceptorListener);
    }
    return acceptor;
  }

  /** Shuts down the background side (REVERSE) and checks that all of it terminates. */
  void close() throws Exception {
    for (ManagedClientTransport d : dialers) {
      d.shutdownNow(Status.UNAVAILABLE.withDescription("test over"));
    }
    for (ClientTransportRecorder l : dialerListeners) {
      l.awaitTerminated();
    }
    if (acceptor != null) {
      acceptor.shutdown();
      assertTrue(acceptorListener.awaitShutdown(), "acceptor did not shut down");
      // Close the accepting ends too rather than rely on the dialers' CONNECTION_CLOSE alone:
      // a lost close packet would leave them up until QUIC's idle timeout.
      for (ServerTransportRecorder t : acceptorListener.all) {
        t.transport.shutdownNow(Status.UNAVAILABLE.withDescription("test over"));
      }
      for (ServerTransportRecorder t : acceptorListener.all) {
        assertTrue(t.awaitTermination(), "acceptor transport did not terminate: " + t.transport);
      }
    }
  }

  private static KeyStore keyStore() {
    try {
      return Pem.keyStore(Pem.readPrivateKey(new ByteArrayInputStream(
          CERT.privateKeyPem().getBytes(StandardCharsets.US_ASCII))), List.of(CERT.certificate()));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
