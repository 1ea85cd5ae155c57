package dev.brpc.quic;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;
import static com.google.common.base.Preconditions.checkState;

import dev.brpc.quic.internal.CallbackServer;
import dev.brpc.quic.internal.ListeningServer;
import dev.brpc.quic.internal.Pem;
import dev.brpc.quic.internal.TransportConfig;
import io.grpc.ForwardingServerBuilder;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.internal.ServerImplBuilder;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Builds a grpc-java {@link Server} that serves calls over brpc's QUIC transport: one QUIC
 * connection per client, one QUIC stream per call, and calls back into clients over the same
 * connection ({@link #connectionListener}, {@link PeerConnection#channel()}).
 *
 * <pre>{@code
 * Server server = QuicServerBuilder.forPort(8443)
 *     .useTransportSecurity(new File("cert.pem"), new File("key.pem"))
 *     .addService(new GreeterImpl())
 *     .build()
 *     .start();
 * }</pre>
 *
 * <p>{@link #forCallbacks()} builds the other kind: a server with no socket that serves the
 * calls a server makes back into a client, on the connections a {@link QuicChannelBuilder}
 * dials. Its {@code maxInboundMessageSize} and {@code maxInboundMetadataSize} limit the
 * callbacks it receives; connection settings (TLS, idle timeout, keepalive, stream credit)
 * belong to the channel and are rejected here.
 *
 * <p>Settings a QUIC transport cannot honour ({@code maxConnectionIdle}, {@code
 * maxConnectionAge}, {@code permitKeepAliveTime}, ...) throw {@link
 * UnsupportedOperationException} rather than being ignored.
 *
 * <p>Not thread-safe: build on one thread.
 */
public final class QuicServerBuilder extends ForwardingServerBuilder<QuicServerBuilder> {
  private final ServerImplBuilder delegate;
  private final ListeningServer.Options options; // null for forCallbacks()
  private final TransportConfig config;
  private CallbackServer callbackServer;

  private QuicServerBuilder(SocketAddress address) {
    if (address != null) {
      options = new ListeningServer.Options();
      options.address = address;
      config = options.config;
      delegate = new ServerImplBuilder(
          (tracers, metrics) -> new ListeningServer(options, tracers));
    } else {
      options = null;
      config = new TransportConfig();
      delegate = new ServerImplBuilder((tracers, metrics) -> {
        callbackServer = new CallbackServer(tracers, config);
        return callbackServer;
      });
    }
  }

  /**
   * A server on every interface at {@code port} (0 picks a free port; see {@link Server#getPort}).
   *
   * @param port the UDP port to listen on, 0 to 65535
   * @return a new builder
   */
  public static QuicServerBuilder forPort(int port) {
    checkArgument(port >= 0 && port <= 65535, "port must be 0..65535");
    return new QuicServerBuilder(new InetSocketAddress(port));
  }

  /**
   * A server on {@code address}, e.g. {@code new InetSocketAddress("127.0.0.1", 0)}.
   *
   * @param address the local address to bind, an {@link InetSocketAddress}
   * @return a new builder
   */
  public static QuicServerBuilder forAddress(SocketAddress address) {
    checkNotNull(address, "address");
    checkArgument(address instanceof InetSocketAddress, "address must be an InetSocketAddress");
    return new QuicServerBuilder(address);
  }

  /**
   * A server with no socket, serving the calls a brpc server makes back into this client on
   * the connections a channel dials. Pass it to {@link QuicChannelBuilder#callbackServer} and
   * start it before the channel connects.
   *
   * @return a new builder for a callback server
   */
  public static QuicServerBuilder forCallbacks() {
    return new QuicServerBuilder(null);
  }

  @Override
  protected ServerBuilder<?> delegate() {
    return delegate;
  }

  /** TLS from a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1). */
  @Override
  public QuicServerBuilder useTransportSecurity(File certChain, File privateKey) {
    try (InputStream c = new FileInputStream(certChain);
        InputStream k = new FileInputStream(privateKey)) {
      return useTransportSecurity(c, k);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + certChain + " or " + privateKey, e);
    }
  }

  /** TLS from PEM streams (read, not closed). */
  @Override
  public QuicServerBuilder useTransportSecurity(InputStream certChain, InputStream privateKey) {
    checkListening("useTransportSecurity");
    try {
      KeyStore ks = Pem.keyStore(Pem.readPrivateKey(privateKey), Pem.readCertificates(certChain));
      return keyStore(ks, Pem.KEY_ALIAS, Pem.keyPassword());
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read the PEM certificate or key: "
          + e.getMessage(), e);
    }
  }

  /**
   * TLS from a generated development certificate.
   *
   * @param certificate the development certificate and its key
   * @return this builder
   */
  public QuicServerBuilder useTransportSecurity(SelfSignedCertificate certificate) {
    checkNotNull(certificate, "certificate");
    return keyStore(certificate.keyStore(), Pem.KEY_ALIAS, Pem.keyPassword());
  }

  /**
   * TLS from the key entry {@code alias} of {@code keyStore} (RSA or EC P-256/384/521).
   *
   * @param keyStore the key store holding the server's key and certificate chain
   * @param alias the key entry's alias
   * @param password the key entry's password (copied)
   * @return this builder
   */
  public QuicServerBuilder keyStore(KeyStore keyStore, String alias, char[] password) {
    checkListening("keyStore");
    options.keyStore = checkNotNull(keyStore, "keyStore");
    options.keyAlias = checkNotNull(alias, "alias");
    options.keyPassword = checkNotNull(password, "password").clone();
    return this;
  }

  /**
   * The QUIC engine that listens: {@code "kwik"} (pure Java, always there) or {@code "native"}
   * (Netty's QUIC codec over quiche, with {@code brpc-quic-netty} on the class path). By
   * default the best engine that runs here; the system property {@code brpc.quic.engine}
   * overrides the default. Clients on either engine can connect to either.
   *
   * @param name {@code "kwik"} or {@code "native"}
   * @return this builder
   */
  public QuicServerBuilder engine(String name) {
    checkListening("engine");
    options.engine = checkNotNull(name, "name");
    return this;
  }

  /**
   * Admits or refuses each client when it connects (authentication).
   *
   * @param handler decides on each new connection
   * @return this builder
   */
  public QuicServerBuilder connectHandler(ConnectHandler handler) {
    checkListening("connectHandler");
    options.connectHandler = checkNotNull(handler, "handler");
    return this;
  }

  /**
   * Learns of every client connection; {@link PeerConnection#channel()} calls it back.
   *
   * @param listener told when a client connects and when it disconnects
   * @return this builder
   */
  public QuicServerBuilder connectionListener(QuicConnectionListener listener) {
    checkListening("connectionListener");
    options.connectionListener = checkNotNull(listener, "listener");
    return this;
  }

  @Override
  public QuicServerBuilder maxInboundMessageSize(int bytes) {
    checkArgument(bytes >= 0, "maxInboundMessageSize must be >= 0");
    config.maxInboundMessageSize = bytes;
    return this;
  }

  @Override
  public QuicServerBuilder maxInboundMetadataSize(int bytes) {
    checkArgument(bytes > 0, "maxInboundMetadataSize must be > 0");
    config.maxInboundMetadataSize = bytes;
    return this;
  }

  /** How long a client has to send its SETTINGS after the QUIC handshake. */
  @Override
  public QuicServerBuilder handshakeTimeout(long timeout, TimeUnit unit) {
    checkListening("handshakeTimeout");
    checkArgument(timeout > 0, "handshakeTimeout must be > 0");
    config.handshakeTimeoutNanos = unit.toNanos(timeout);
    delegate.handshakeTimeout(timeout, unit);
    return this;
  }

  /** Pings each client after this long without a ping answer, to detect dead clients. */
  @Override
  public QuicServerBuilder keepAliveTime(long time, TimeUnit unit) {
    checkListening("keepAliveTime");
    checkArgument(time > 0, "keepAliveTime must be > 0");
    config.keepAliveTimeNanos = Math.max(unit.toNanos(time), TimeUnit.SECONDS.toNanos(1));
    return this;
  }

  @Override
  public QuicServerBuilder keepAliveTimeout(long timeout, TimeUnit unit) {
    checkListening("keepAliveTimeout");
    checkArgument(timeout > 0, "keepAliveTimeout must be > 0");
    config.keepAliveTimeoutNanos = unit.toNanos(timeout);
    return this;
  }

  /**
   * Writes a <a href="https://datatracker.ietf.org/doc/draft-ietf-quic-qlog-main-schema/">qlog</a>
   * file per connection into {@code directory} (created if missing), for QUIC-level debugging
   * with tools such as qvis. Off by default. The native engine writes them (quiche's qlog, one
   * {@code <trace id>.qlog} per connection); the kwik engine cannot (kwik 0.10.9 ships no qlog
   * writer) and logs one WARNING that it ignores the setting.
   *
   * @param directory where the qlog files go
   * @return this builder
   */
  public QuicServerBuilder qlogDirectory(Path directory) {
    checkListening("qlogDirectory");
    options.config.qlogDirectory = checkNotNull(directory, "directory");
    return this;
  }

  /**
   * Configures the channels through which the server calls its clients back
   * ({@link PeerConnection#channel()}), before each is built: a channel's interceptors,
   * OpenTelemetry ({@code GrpcOpenTelemetry.configureChannelBuilder}), anything a
   * {@link io.grpc.ManagedChannelBuilder} takes. Runs once per connection, on a transport
   * thread; the target and transport are brpc's.
   *
   * @param configure applied to each callback channel's builder
   * @return this builder
   */
  public QuicServerBuilder callbackChannel(
      Consumer<? super ManagedChannelBuilder<?>> configure) {
    checkListening("callbackChannel");
    options.config.peerChannelConfig = checkNotNull(configure, "configure");
    return this;
  }

  /**
   * The stall watchdog: with calls open on a connection and nothing from the peer for this
   * long, the connection is probed with a PING; if nothing arrives for as long again, it is
   * closed and its calls fail UNAVAILABLE ("connection stalled"), well before the QUIC idle
   * timeout would end them. A quiet connection with open calls (a long poll) costs one PING
   * round trip per period. It is also how long an {@link #idleProbeTime idle probe} waits for
   * its answer. Default 5 seconds; at least 100 ms; {@code Long.MAX_VALUE} nanoseconds (or
   * more) switches the watchdog off for calls.
   *
   * @param timeout how long a connection with open calls may hear nothing before the probe
   * @param unit the unit of {@code timeout}
   * @return this builder
   */
  public QuicServerBuilder stallTimeout(long timeout, TimeUnit unit) {
    checkListening("stallTimeout");
    checkArgument(timeout > 0, "stallTimeout must be > 0");
    config.stallTimeoutNanos = Math.max(unit.toNanos(timeout),
        TimeUnit.MILLISECONDS.toNanos(100));
    return this;
  }
  /**
   * Dead-peer detection on a connection without calls: when nothing has arrived from the peer
   * for this long, the connection is probed with a PING; if nothing arrives within the {@link
   * #stallTimeout stall timeout}, the peer is taken for gone (a killed process, a lost network:
   * over UDP nobody says so) and the connection is closed, UNAVAILABLE "peer not answering".
   * With the defaults (4 s and 5 s) a vanished peer is noticed within about 10 s, whichever
   * side it was; a live idle connection costs one PING and its answer per period (README, "A
   * dead peer"). At least 100 ms; {@code Long.MAX_VALUE} nanoseconds (or more) switches it off,
   * leaving a silent peer to the QUIC idle timeout.
   *
   * @param time how long a connection without calls may hear nothing before the probe
   * @param unit the unit of {@code time}
   * @return this builder
   */
  public QuicServerBuilder idleProbeTime(long time, TimeUnit unit) {
    checkListening("idleProbeTime");
    checkArgument(time > 0, "idleProbeTime must be > 0");
    config.idleProbeNanos = Math.max(unit.toNanos(time), TimeUnit.MILLISECONDS.toNanos(100));
    return this;
  }

  /**
   * QUIC's idle timeout: a connection that carries no packet for this long is closed (its calls
   * fail UNAVAILABLE). Clients keep quiet connections open with pings. Default 30 seconds.
   *
   * @param timeout the idle timeout, at least one second
   * @param unit the unit of {@code timeout}
   * @return this builder
   */
  public QuicServerBuilder quicIdleTimeout(long timeout, TimeUnit unit) {
    checkListening("quicIdleTimeout");
    checkArgument(unit.toMillis(timeout) >= 1000, "quicIdleTimeout must be >= 1 second");
    config.idleTimeoutNanos = unit.toNanos(timeout);
    return this;
  }

  /**
   * How long a call stream may take to deliver its complete request headers; a stream that
   * trickles them is reset with DEADLINE_EXCEEDED's code (PROTOCOL.md, section 5). Default
   * 10 seconds. Applies to callback servers too.
   *
   * @param timeout how long a stream may take to deliver its request headers
   * @param unit the unit of {@code timeout}
   * @return this builder
   */
  public QuicServerBuilder headersTimeout(long timeout, TimeUnit unit) {
    checkArgument(timeout > 0, "headersTimeout must be > 0");
    config.headersTimeoutNanos = unit.toNanos(timeout);
    return this;
  }

  /**
   * Closes a connection whose peer resets more than {@code maxRstStream} of its calls within
   * {@code secondsPerWindow} seconds, with RESOURCE_EXHAUSTED: opening and resetting calls in a
   * loop costs the peer one frame each and the server a stream, a thread and a call (the
   * "rapid reset" attack). As grpc's NettyServerBuilder.maxRstFramesPerWindow. Default 1000
   * per second; {@code 0} disables the check.
   *
   * @param maxRstStream the most resets allowed per window; 0 disables the check
   * @param secondsPerWindow the window's length, in seconds
   * @return this builder
   */
  public QuicServerBuilder maxRstFramesPerWindow(int maxRstStream, int secondsPerWindow) {
    checkArgument(maxRstStream >= 0, "maxRstStream must be >= 0");
    checkArgument(secondsPerWindow > 0, "secondsPerWindow must be > 0");
    config.maxResetsPerWindow = maxRstStream;
    config.resetWindowNanos = TimeUnit.SECONDS.toNanos(secondsPerWindow);
    return this;
  }

  /**
   * How many calls a peer may have open toward this side on one connection (QUIC stream
   * credit); further calls wait for a free stream. Default 1000.
   *
   * @param max the most calls a peer may have open at once on one connection
   * @return this builder
   */
  public QuicServerBuilder maxConcurrentCallsPerConnection(int max) {
    checkListening("maxConcurrentCallsPerConnection");
    checkArgument(max > 0, "maxConcurrentCallsPerConnection must be > 0");
    config.maxConcurrentCallsPerConnection = max;
    return this;
  }

  @Override
  public QuicServerBuilder maxConnectionIdle(long time, TimeUnit unit) {
    throw new UnsupportedOperationException(
        "maxConnectionIdle is not supported by the QUIC transport; see quicIdleTimeout");
  }

  @Override
  public QuicServerBuilder maxConnectionAge(long time, TimeUnit unit) {
    throw new UnsupportedOperationException("maxConnectionAge is not supported by the QUIC"
        + " transport");
  }

  @Override
  public QuicServerBuilder maxConnectionAgeGrace(long time, TimeUnit unit) {
    throw new UnsupportedOperationException("maxConnectionAgeGrace is not supported by the QUIC"
        + " transport");
  }

  @Override
  public QuicServerBuilder permitKeepAliveTime(long time, TimeUnit unit) {
    throw new UnsupportedOperationException("permitKeepAliveTime is not enforced by the QUIC"
        + " transport");
  }

  @Override
  public QuicServerBuilder permitKeepAliveWithoutCalls(boolean permit) {
    throw new UnsupportedOperationException("permitKeepAliveWithoutCalls is not enforced by"
        + " the QUIC transport");
  }

  @Override
  public Server build() {
    if (options != null) {
      checkState(options.keyStore != null, "a QUIC server needs TLS: call useTransportSecurity"
          + " or keyStore (SelfSignedCertificate for development)");
      options.config = config;
      return delegate.build();
    }
    Server server = delegate.build();
    CallbackServer.BUILT.put(server, callbackServer);
    return server;
  }

  private void checkListening(String what) {
    if (options == null) {
      throw new UnsupportedOperationException(what + " does not apply to forCallbacks(): the"
          + " callback server rides on the channel's connections; set it on QuicChannelBuilder");
    }
  }
}
