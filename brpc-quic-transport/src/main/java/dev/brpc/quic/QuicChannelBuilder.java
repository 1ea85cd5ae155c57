package dev.brpc.quic;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import dev.brpc.quic.internal.CallbackServer;
import dev.brpc.quic.internal.DialingTransportFactory;
import dev.brpc.quic.internal.Pem;
import io.grpc.ForwardingChannelBuilder2;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.internal.GrpcUtil;
import io.grpc.internal.ManagedChannelImplBuilder;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import javax.net.ssl.X509TrustManager;

/**
 * Builds a grpc-java {@link io.grpc.ManagedChannel} over brpc's QUIC transport. Everything a
 * {@code ManagedChannelBuilder} offers (interceptors, executors, deadlines, retries, load
 * balancing) works as usual; each connection the channel dials can also serve calls the
 * server makes back ({@link #callbackServer}).
 *
 * <pre>{@code
 * ManagedChannel channel = QuicChannelBuilder.forAddress("localhost", 8443)
 *     .trustCertificates(new File("cert.pem"))
 *     .build();
 * GreeterGrpc.GreeterBlockingStub greeter = GreeterGrpc.newBlockingStub(channel);
 * }</pre>
 *
 * <p>Certificates are checked by default. kwik verifies the server's DNS names, never IP
 * addresses, so dial a host name the certificate names (e.g. {@code localhost}).
 *
 * <p>Not thread-safe: build on one thread.
 */
public final class QuicChannelBuilder extends ForwardingChannelBuilder2<QuicChannelBuilder> {
  private final ManagedChannelImplBuilder delegate;
  private final DialingTransportFactory.Options options = new DialingTransportFactory.Options();

  private QuicChannelBuilder(String target) {
    delegate = new ManagedChannelImplBuilder(target,
        () -> new DialingTransportFactory(options),
        new ManagedChannelImplBuilder.FixedPortProvider(GrpcUtil.DEFAULT_PORT_SSL));
  }

  /**
   * A channel to {@code host:port}.
   *
   * @param host the server's host name
   * @param port the server's UDP port, 1 to 65535
   * @return a new builder
   */
  public static QuicChannelBuilder forAddress(String host, int port) {
    checkNotNull(host, "host");
    checkArgument(port > 0 && port <= 65535, "port must be 1..65535");
    return new QuicChannelBuilder(GrpcUtil.authorityFromHostAndPort(host, port));
  }

  /**
   * A channel to a gRPC target, e.g. {@code dns:///server.example:8443}.
   *
   * @param target the target URI or authority
   * @return a new builder
   */
  public static QuicChannelBuilder forTarget(String target) {
    return new QuicChannelBuilder(checkNotNull(target, "target"));
  }

  @Override
  protected ManagedChannelBuilder<?> delegate() {
    return delegate;
  }

  /**
   * Trusts the certificates in a PEM file (instead of the JDK's default trust store).
   *
   * @param pem a file of PEM certificates
   * @return this builder
   */
  public QuicChannelBuilder trustCertificates(File pem) {
    try (InputStream in = new FileInputStream(pem)) {
      return trustCertificates(in);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + pem, e);
    }
  }

  /**
   * Trusts the certificates in a PEM stream (read, not closed).
   *
   * @param pem a stream of PEM certificates
   * @return this builder
   */
  public QuicChannelBuilder trustCertificates(InputStream pem) {
    try {
      return trustStore(Pem.trustStore(Pem.readCertificates(pem)));
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read PEM certificates: " + e.getMessage(), e);
    }
  }

  /**
   * Trusts exactly one certificate: the server's own (pinning) or its CA.
   *
   * @param certificate the certificate to trust
   * @return this builder
   */
  public QuicChannelBuilder trustCertificate(X509Certificate certificate) {
    return trustStore(Pem.trustStore(List.of(checkNotNull(certificate, "certificate"))));
  }

  /**
   * Trusts the certificates of {@code trustStore}.
   *
   * @param trustStore the key store holding the trusted certificates
   * @return this builder
   */
  public QuicChannelBuilder trustStore(KeyStore trustStore) {
    options.trustStore = checkNotNull(trustStore, "trustStore");
    options.trustManager = null;
    options.insecure = false;
    return this;
  }

  /**
   * Verifies the server with {@code trustManager}.
   *
   * @param trustManager verifies the server's certificate chain
   * @return this builder
   */
  public QuicChannelBuilder trustManager(X509TrustManager trustManager) {
    options.trustManager = checkNotNull(trustManager, "trustManager");
    options.trustStore = null;
    options.insecure = false;
    return this;
  }

  /**
   * Accepts any server certificate. <b>Development only</b>: anyone on the path can
   * impersonate the server.
   *
   * @return this builder
   */
  public QuicChannelBuilder disableCertificateVerificationForDevelopmentOnly() {
    options.insecure = true;
    return this;
  }

  /**
   * The QUIC engine that dials: {@code "kwik"} (pure Java, always there) or {@code "native"}
   * (Netty's QUIC codec over quiche, with {@code brpc-quic-netty} on the class path). By
   * default the best engine that runs here; the system property {@code brpc.quic.engine}
   * overrides the default. README.md, "Engines", says what each costs.
   *
   * @param name {@code "kwik"} or {@code "native"}
   * @return this builder
   */
  public QuicChannelBuilder engine(String name) {
    options.engine = checkNotNull(name, "name");
    return this;
  }

  /**
   * Metadata sent to the server when each connection is set up (e.g. a bearer token).
   *
   * @param metadata the metadata to send; copied for each connection
   * @return this builder
   */
  public QuicChannelBuilder connectMetadata(Metadata metadata) {
    checkNotNull(metadata, "metadata");
    return connectMetadata(() -> {
      Metadata copy = new Metadata();
      copy.merge(metadata);
      return copy;
    });
  }

  /**
   * Like {@link #connectMetadata(Metadata)}, asked anew for every connection (token refresh).
   *
   * @param metadata supplies the metadata for each new connection
   * @return this builder
   */
  public QuicChannelBuilder connectMetadata(Supplier<Metadata> metadata) {
    options.connectMetadata = checkNotNull(metadata, "metadata");
    return this;
  }

  /**
   * Serves the calls the server makes back into this client, on every connection this channel
   * dials. {@code server} must come from {@link QuicServerBuilder#forCallbacks()}; start it
   * before the first call.
   *
   * @param server the callback server, from {@link QuicServerBuilder#forCallbacks()}
   * @return this builder
   */
  public QuicChannelBuilder callbackServer(Server server) {
    CallbackServer cs = CallbackServer.BUILT.get(checkNotNull(server, "server"));
    checkArgument(cs != null, "server must be built by QuicServerBuilder.forCallbacks()");
    options.callbackServer = cs;
    return this;
  }

  /**
   * Learns of every connection the channel dials (and loses).
   *
   * @param listener told when a connection is set up and when it closes
   * @return this builder
   */
  public QuicChannelBuilder connectionListener(QuicConnectionListener listener) {
    options.connectionListener = checkNotNull(listener, "listener");
    return this;
  }

  @Override
  public QuicChannelBuilder maxInboundMessageSize(int bytes) {
    checkArgument(bytes >= 0, "maxInboundMessageSize must be >= 0");
    options.config.maxInboundMessageSize = bytes;
    delegate.maxInboundMessageSize(bytes);
    return this;
  }

  @Override
  public QuicChannelBuilder maxInboundMetadataSize(int bytes) {
    checkArgument(bytes > 0, "maxInboundMetadataSize must be > 0");
    options.config.maxInboundMetadataSize = bytes;
    return this;
  }

  /** Pings the server after this long without a ping answer; a dead server fails the calls. */
  @Override
  public QuicChannelBuilder keepAliveTime(long time, TimeUnit unit) {
    checkArgument(time > 0, "keepAliveTime must be > 0");
    options.config.keepAliveTimeNanos = Math.max(unit.toNanos(time), TimeUnit.SECONDS.toNanos(1));
    return this;
  }

  @Override
  public QuicChannelBuilder keepAliveTimeout(long timeout, TimeUnit unit) {
    checkArgument(timeout > 0, "keepAliveTimeout must be > 0");
    options.config.keepAliveTimeoutNanos = unit.toNanos(timeout);
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
  public QuicChannelBuilder qlogDirectory(Path directory) {
    options.config.qlogDirectory = checkNotNull(directory, "directory");
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
  public QuicChannelBuilder stallTimeout(long timeout, TimeUnit unit) {
    checkArgument(timeout > 0, "stallTimeout must be > 0");
    options.config.stallTimeoutNanos = Math.max(unit.toNanos(timeout),
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
  public QuicChannelBuilder idleProbeTime(long time, TimeUnit unit) {
    checkArgument(time > 0, "idleProbeTime must be > 0");
    options.config.idleProbeNanos = Math.max(unit.toNanos(time), TimeUnit.MILLISECONDS.toNanos(100));
    return this;
  }


  @Override
  public QuicChannelBuilder keepAliveWithoutCalls(boolean enable) {
    options.config.keepAliveWithoutCalls = enable;
    return this;
  }

  /**
   * QUIC's idle timeout (the smaller of both sides' applies). Default 30 seconds.
   *
   * @param timeout the idle timeout, at least one second
   * @param unit the unit of {@code timeout}
   * @return this builder
   */
  public QuicChannelBuilder quicIdleTimeout(long timeout, TimeUnit unit) {
    checkArgument(unit.toMillis(timeout) >= 1000, "quicIdleTimeout must be >= 1 second");
    options.config.idleTimeoutNanos = unit.toNanos(timeout);
    return this;
  }

  /**
   * How long one connection attempt waits for the server's first packet. Default 20 seconds.
   * Once the server answers, the QUIC handshake may take up to {@link #handshakeTimeout}. A
   * short one makes a client that keeps reconnecting notice sooner that the server is back:
   * within an attempt, kwik retransmits its first packet at ever longer intervals.
   *
   * @param timeout how long to wait for the server's first packet
   * @param unit the unit of {@code timeout}
   * @return this builder
   */
  public QuicChannelBuilder connectTimeout(long timeout, TimeUnit unit) {
    checkArgument(timeout > 0, "connectTimeout must be > 0");
    options.config.connectTimeoutNanos = unit.toNanos(timeout);
    return this;
  }

  /**
   * How long the QUIC handshake may take once the server answered, and then how long the
   * server may take to admit us (its SETTINGS). Default 20 seconds.
   *
   * @param timeout how long the handshake and the admission may take
   * @param unit the unit of {@code timeout}
   * @return this builder
   */
  public QuicChannelBuilder handshakeTimeout(long timeout, TimeUnit unit) {
    checkArgument(timeout > 0, "handshakeTimeout must be > 0");
    options.config.handshakeTimeoutNanos = unit.toNanos(timeout);
    return this;
  }

  /**
   * How many callback calls the server may have open on one connection. Default 1000.
   *
   * @param max the most callback calls open at once on one connection
   * @return this builder
   */
  public QuicChannelBuilder maxConcurrentCallsPerConnection(int max) {
    checkArgument(max > 0, "maxConcurrentCallsPerConnection must be > 0");
    options.config.maxConcurrentCallsPerConnection = max;
    return this;
  }

  /** QUIC is always encrypted: plaintext is refused. */
  @Override
  public QuicChannelBuilder usePlaintext() {
    throw new UnsupportedOperationException("QUIC always uses TLS 1.3; there is no plaintext");
  }

  @Override
  public QuicChannelBuilder useTransportSecurity() {
    return this;
  }
}
