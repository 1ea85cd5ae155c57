package dev.brpc;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;
import static com.google.common.base.Preconditions.checkState;

import dev.brpc.quic.QuicServerBuilder;
import dev.brpc.quic.SelfSignedCertificate;
import dev.brpc.quic.internal.Pem;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.BindableService;
import io.grpc.Context;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Server;
import io.grpc.ServerInterceptor;
import io.grpc.ServerServiceDefinition;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.SocketAddress;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * A gRPC server that can call back into the clients connected to it. Each {@link BrpcClient}
 * holds one QUIC connection to it; the client's calls and the server's callbacks share it,
 * one QUIC stream per call.
 *
 * <pre>{@code
 * final class GreeterService extends GreeterGrpc.GreeterImplBase {
 *   private final BrpcServer<NamerGrpc.NamerBlockingStub> server;
 *
 *   GreeterService(BrpcServer<NamerGrpc.NamerBlockingStub> server) {
 *     this.server = server;
 *   }
 *
 *   public void greet(GreetRequest request, StreamObserver<GreetReply> reply) {
 *     // The client that made this call, called back over its own connection.
 *     String name = server.clientFromContext().name(NameRequest.getDefaultInstance()).getName();
 *     reply.onNext(GreetReply.newBuilder().setGreeting("Hello, " + name + "!").build());
 *     reply.onCompleted();
 *   }
 * }
 *
 * BrpcServer<NamerGrpc.NamerBlockingStub> server =
 *     BrpcServer.forPort(8443, NamerGrpc::newBlockingStub)
 *         .useTransportSecurity(new File("cert.pem"), new File("key.pem"))
 *         .addService(GreeterService::new)
 *         .build()
 *         .start();
 * }</pre>
 *
 * <p>Besides {@link #clientFromContext()}, the server keeps a registry of its clients
 * ({@link #clients()}, {@link #client(UUID)}, {@link Builder#addListener}) and round-robin
 * channels over them ({@link #allClients()}, {@link #clientsWithKey(Object)}), for calls made
 * outside of any request, from a scheduled task for example.
 *
 * <p>Thread-safe.
 *
 * @param <C> the stub type, built by the {@link ClientServiceBuilder}, that calls a client
 */
public final class BrpcServer<C> {
  private final ClientRegistry<C> registry;
  /** Set once by {@link Builder#build()}, before the server is returned to anyone. */
  private volatile Server server;
  /** Builds the TCP side for the UDP port bound; null without one ({@link Builder#tcp}). */
  private volatile java.util.function.IntFunction<Server> tcpFactory;
  /** The TCP side, once started. */
  private volatile Server tcp;

  private BrpcServer(ClientRegistry<C> registry) {
    this.registry = registry;
  }

  /**
   * A builder for a server on {@code port} of every local address; 0 picks a free port.
   *
   * @param <C> the stub type that calls a client
   * @param port the UDP port to listen on; 0 picks a free one
   * @param clientService builds the stub that calls a client over its connection
   * @return a new builder
   */
  public static <C> Builder<C> forPort(int port, ClientServiceBuilder<C> clientService) {
    return new Builder<>(QuicServerBuilder.forPort(port), clientService, null);
  }

  /**
   * A builder for a server on {@code address}, e.g.
   * {@code new InetSocketAddress("127.0.0.1", 0)}.
   *
   * @param <C> the stub type that calls a client
   * @param address the local address to bind
   * @param clientService builds the stub that calls a client over its connection
   * @return a new builder
   */
  public static <C> Builder<C> forAddress(SocketAddress address,
      ClientServiceBuilder<C> clientService) {
    return new Builder<>(QuicServerBuilder.forAddress(address), clientService, address);
  }

  /**
   * Binds and starts serving.
   *
   * @return this server
   * @throws IOException if the server cannot bind its address
   */
  public BrpcServer<C> start() throws IOException {
    server.start();
    if (tcpFactory != null) {
      Server t = tcpFactory.apply(server.getPort());
      try {
        t.start();
      } catch (IOException | RuntimeException e) {
        server.shutdownNow();
        throw new IOException("cannot serve on TCP: " + e.getMessage(), e);
      }
      tcp = t;
    }
    return this;
  }

  /**
   * The TCP port of the server's TCP side ({@link Builder#tcp}); only valid once started.
   *
   * @return the bound TCP port
   * @throws IllegalStateException if the server has no TCP side or is not started
   */
  public int tcpPort() {
    Server t = tcp;
    checkState(t != null, "no TCP side: the server was built without tcp(), or is not started");
    return t.getPort();
  }

  /**
   * The UDP port the server listens on; only valid once started.
   *
   * @return the bound UDP port
   */
  public int port() {
    return server.getPort();
  }

  /**
   * The client that made the current call, as the stub built by the
   * {@link ClientServiceBuilder}. Call it inside a handler of this server (or in a context
   * derived from the handler's); a callback made through it inherits the handler's deadline and
   * cancellation.
   *
   * @return the stub that calls the current call's client
   * @throws io.grpc.StatusRuntimeException FAILED_PRECONDITION outside a call from a client of
   *     this server; UNAVAILABLE once that client has disconnected
   */
  public C clientFromContext() {
    return clientFromContext(Context.current());
  }

  /**
   * {@link #clientFromContext()} for the call that {@code context} belongs to.
   *
   * @param context the context of a call from a client of this server
   * @return the stub that calls that call's client
   */
  public C clientFromContext(Context context) {
    return registry.clientOf(checkNotNull(context, "context"));
  }

  /**
   * The client that made the current call: its id, identity, address and stub.
   *
   * @return the current call's client
   * @throws io.grpc.StatusRuntimeException FAILED_PRECONDITION outside a call from a client of
   *     this server
   */
  public ConnectedClient<C> callerFromContext() {
    return callerFromContext(Context.current());
  }

  /**
   * {@link #callerFromContext()} for the call that {@code context} belongs to.
   *
   * @param context the context of a call from a client of this server
   * @return that call's client
   */
  public ConnectedClient<C> callerFromContext(Context context) {
    return registry.callerOf(checkNotNull(context, "context"), "callerFromContext");
  }

  /**
   * A snapshot of the connected clients.
   *
   * @return the clients connected now
   */
  public List<ConnectedClient<C>> clients() {
    return registry.clients();
  }

  /**
   * The connected client with this id, if it is connected.
   *
   * @param id the client's connection id
   * @return the client, or empty if none with this id is connected
   */
  public Optional<ConnectedClient<C>> client(UUID id) {
    return registry.client(checkNotNull(id, "id"));
  }

  /**
   * A round-robin channel over all connected clients.
   *
   * @return the channel over all clients
   */
  public ClientsChannel<C> allClients() {
    return registry.all();
  }

  /**
   * A round-robin channel over the clients whose affinity key equals {@code key} (see
   * {@link Builder#affinity}); it exists, empty, before any such client connects. Keys should be
   * a bounded set (tenants, regions): each has its channel until the server shuts down.
   *
   * @param key the affinity key
   * @return the channel over the clients with this key
   */
  public ClientsChannel<C> clientsWithKey(Object key) {
    return registry.withKey(checkNotNull(key, "key"));
  }

  /**
   * Stops accepting clients and new calls in both directions: new calls from clients and new
   * callbacks fail UNAVAILABLE; calls in flight, either way, finish. Returns at once.
   *
   * @return this server
   */
  public BrpcServer<C> shutdown() {
    registry.shutdown(false);
    server.shutdown();
    Server t = tcp;
    if (t != null) {
      t.shutdown();
    }
    return this;
  }

  /**
   * As {@link #shutdown()}, and cancels the calls in flight in both directions.
   *
   * @return this server
   */
  public BrpcServer<C> shutdownNow() {
    registry.shutdown(true);
    server.shutdownNow();
    Server t = tcp;
    if (t != null) {
      t.shutdownNow();
    }
    return this;
  }

  /**
   * Whether {@link #shutdown()} or {@link #shutdownNow()} was called.
   *
   * @return true once the server is shut down
   */
  public boolean isShutdown() {
    return server.isShutdown();
  }

  /**
   * True once shut down and every connection is closed.
   *
   * @return true once the server has terminated
   */
  public boolean isTerminated() {
    Server t = tcp;
    return server.isTerminated() && (t == null || t.isTerminated());
  }

  /**
   * Waits up to {@code timeout} for the server to terminate after a shutdown.
   *
   * @param timeout how long to wait
   * @param unit the unit of {@code timeout}
   * @return true if the server terminated, false if time ran out first
   * @throws InterruptedException if interrupted while waiting
   */
  public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
    long deadline = System.nanoTime() + unit.toNanos(timeout);
    if (!server.awaitTermination(timeout, unit)) {
      return false;
    }
    Server t = tcp;
    return t == null || t.awaitTermination(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
  }

  /**
   * Waits for the server to terminate after a shutdown.
   *
   * @throws InterruptedException if interrupted while waiting
   */
  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
    Server t = tcp;
    if (t != null) {
      t.awaitTermination();
    }
  }

  /**
   * Configures a {@link BrpcServer}. Settings not offered here are reached through
   * {@link #transport}.
   *
   * <p>Not thread-safe.
   */
  public static final class Builder<C> {
    private final QuicServerBuilder quic;
    /** The UDP address asked for; null for every local address (forPort). */
    private final SocketAddress quicAddress;
    private final ClientServiceBuilder<C> clientService;
    private final List<ClientListener<C>> listeners = new ArrayList<>();
    private final List<Function<? super BrpcServer<C>, ? extends BindableService>>
        serviceFactories = new ArrayList<>();
    private Authenticator authenticator;
    private Function<? super ConnectedClient<C>, ?> affinity;
    private int maxInboundMessageSize = 4 * 1024 * 1024;
    private Consumer<? super ManagedChannelBuilder<?>> callbackChannel;
    private Director<C> director;
    private boolean built;
    /** What the TCP side repeats of this builder's settings, in order ({@link #tcp}). */
    private final List<Consumer<NettyServerBuilder>> tcpSettings = new ArrayList<>();
    private boolean tcpSamePort;
    private SocketAddress tcpAddress;
    private KeyStore tlsKeyStore;
    private String tlsAlias;
    private char[] tlsPassword;

    private Builder(QuicServerBuilder quic, ClientServiceBuilder<C> clientService,
        SocketAddress address) {
      this.quic = quic;
      this.quicAddress = address;
      this.clientService = checkNotNull(clientService, "clientService");
    }

    /**
     * TLS from a PEM certificate chain and a PEM (PKCS#8 or PKCS#1/SEC1) private key.
     *
     * @param certChain a PEM file with the certificate chain
     * @param privateKey a PEM file with the private key
     * @return this builder
     */
    public Builder<C> useTransportSecurity(File certChain, File privateKey) {
      try (InputStream c = new java.io.FileInputStream(certChain);
          InputStream k = new java.io.FileInputStream(privateKey)) {
        return useTransportSecurity(c, k);
      } catch (IOException e) {
        throw new IllegalArgumentException("cannot read the certificate or key: " + e, e);
      }
    }

    /**
     * TLS from PEM streams; they are read before this returns.
     *
     * @param certChain a PEM stream with the certificate chain
     * @param privateKey a PEM stream with the private key
     * @return this builder
     */
    public Builder<C> useTransportSecurity(InputStream certChain, InputStream privateKey) {
      try {
        return keyStore(Pem.keyStore(Pem.readPrivateKey(privateKey),
            Pem.readCertificates(certChain)), Pem.KEY_ALIAS, Pem.keyPassword());
      } catch (IOException e) {
        throw new IllegalArgumentException("cannot read the certificate or key: " + e, e);
      }
    }

    /**
     * TLS from a generated development certificate.
     *
     * @param certificate the development certificate and its key
     * @return this builder
     */
    public Builder<C> useTransportSecurity(SelfSignedCertificate certificate) {
      return useTransportSecurity(
          new java.io.ByteArrayInputStream(certificate.certificatePem().getBytes(
              java.nio.charset.StandardCharsets.US_ASCII)),
          new java.io.ByteArrayInputStream(certificate.privateKeyPem().getBytes(
              java.nio.charset.StandardCharsets.US_ASCII)));
    }

    /**
     * TLS from the key entry {@code alias} of a key store.
     *
     * @param keyStore the key store holding the server's key and certificate chain
     * @param alias the key entry's alias
     * @param password the key entry's password
     * @return this builder
     */
    public Builder<C> keyStore(KeyStore keyStore, String alias, char[] password) {
      quic.keyStore(keyStore, alias, password);
      tlsKeyStore = keyStore;
      tlsAlias = alias;
      tlsPassword = password.clone();
      return this;
    }

    /**
     * A service clients may call.
     *
     * @param service the service to add
     * @return this builder
     */
    public Builder<C> addService(BindableService service) {
      quic.addService(service);
      tcpSettings.add(b -> b.addService(service));
      return this;
    }

    /**
     * A service clients may call.
     *
     * @param service the service to add
     * @return this builder
     */
    public Builder<C> addService(ServerServiceDefinition service) {
      quic.addService(service);
      tcpSettings.add(b -> b.addService(service));
      return this;
    }

    /**
     * A service that needs the server it runs in, typically to call
     * {@link BrpcServer#clientFromContext()}: {@code factory} is given the server when it is
     * built.
     *
     * <pre>{@code
     * BrpcServer.forPort(8443, NamerGrpc::newBlockingStub).addService(GreeterService::new)
     * // where GreeterService(BrpcServer<NamerGrpc.NamerBlockingStub> server) keeps the server
     * }</pre>
     *
     * @param factory makes the service, given the server
     * @return this builder
     */
    public Builder<C> addService(
        Function<? super BrpcServer<C>, ? extends BindableService> factory) {
      serviceFactories.add(checkNotNull(factory, "factory"));
      return this;
    }

    /**
     * An interceptor for every call clients make; it already sees the caller
     * ({@link BrpcServer#callerFromContext()} works inside it).
     *
     * @param interceptor the interceptor to add
     * @return this builder
     */
    public Builder<C> intercept(ServerInterceptor interceptor) {
      quic.intercept(interceptor);
      tcpSettings.add(b -> b.intercept(interceptor));
      return this;
    }

    /**
     * Runs handlers on {@code executor} (grpc's default: a shared cached pool).
     *
     * @param executor the executor for handlers
     * @return this builder
     */
    public Builder<C> executor(Executor executor) {
      quic.executor(executor);
      tcpSettings.add(b -> b.executor(executor));
      return this;
    }

    /**
     * The largest message accepted, from clients' calls and from their responses to
     * callbacks (default 4 MiB); larger ones fail RESOURCE_EXHAUSTED.
     *
     * @param bytes the largest message size, in bytes
     * @return this builder
     */
    public Builder<C> maxInboundMessageSize(int bytes) {
      checkArgument(bytes > 0, "maxInboundMessageSize must be > 0");
      quic.maxInboundMessageSize(bytes);
      this.maxInboundMessageSize = bytes;
      tcpSettings.add(b -> b.maxInboundMessageSize(bytes));
      return this;
    }

    /**
     * The largest metadata block accepted (default 8 KiB).
     *
     * @param bytes the largest metadata size, in bytes
     * @return this builder
     */
    public Builder<C> maxInboundMetadataSize(int bytes) {
      quic.maxInboundMetadataSize(bytes);
      tcpSettings.add(b -> b.maxInboundMetadataSize(bytes));
      return this;
    }

    /**
     * Calls one client may have open toward the server at once; more wait (default 1000).
     *
     * @param max the most calls one client may have open at once
     * @return this builder
     */
    public Builder<C> maxConcurrentCallsPerConnection(int max) {
      quic.maxConcurrentCallsPerConnection(max);
      tcpSettings.add(b -> b.maxConcurrentCallsPerConnection(max));
      return this;
    }

    /**
     * How long a client has to complete its handshake and authentication (default 20 s).
     *
     * @param timeout how long a client may take to handshake and authenticate
     * @param unit the unit of {@code timeout}
     * @return this builder
     */
    public Builder<C> handshakeTimeout(long timeout, TimeUnit unit) {
      quic.handshakeTimeout(timeout, unit);
      tcpSettings.add(b -> b.handshakeTimeout(timeout, unit));
      return this;
    }

    /**
     * Pings a client after this long without hearing from it (default: off).
     *
     * @param time how long without hearing from a client before a ping
     * @param unit the unit of {@code time}
     * @return this builder
     */
    public Builder<C> keepAliveTime(long time, TimeUnit unit) {
      quic.keepAliveTime(time, unit);
      tcpSettings.add(b -> b.keepAliveTime(time, unit));
      return this;
    }

    /**
     * Closes a client's connection when a keepalive ping is not answered within this.
     *
     * @param timeout how long to wait for a ping's answer
     * @param unit the unit of {@code timeout}
     * @return this builder
     */
    public Builder<C> keepAliveTimeout(long timeout, TimeUnit unit) {
      quic.keepAliveTimeout(timeout, unit);
      tcpSettings.add(b -> b.keepAliveTimeout(timeout, unit));
      return this;
    }

    /**
     * QUIC's idle timeout: a connection silent this long is closed (default 30 s).
     *
     * @param timeout the idle timeout
     * @param unit the unit of {@code timeout}
     * @return this builder
     */
    public Builder<C> idleTimeout(long timeout, TimeUnit unit) {
      quic.quicIdleTimeout(timeout, unit);
      return this;
    }

    /**
     * Checks each client's connect metadata; see {@link Authenticator}.
     *
     * @param authenticator admits or refuses each client
     * @return this builder
     */
    public Builder<C> authenticator(Authenticator authenticator) {
      this.authenticator = checkNotNull(authenticator, "authenticator");
      return this;
    }

    /**
     * Groups clients by a key computed once, when each connects (from its identity or connect
     * metadata, say); {@link BrpcServer#clientsWithKey(Object)} then routes among a group. A null
     * key leaves the client out of every group but {@link BrpcServer#allClients()}.
     *
     * @param key computes a client's affinity key, or null for none
     * @return this builder
     */
    public Builder<C> affinity(Function<? super ConnectedClient<C>, ?> key) {
      this.affinity = checkNotNull(key, "key");
      return this;
    }

    /**
     * Hears clients connect and disconnect.
     *
     * @param listener the listener to add
     * @return this builder
     */
    public Builder<C> addListener(ClientListener<C> listener) {
      listeners.add(checkNotNull(listener, "listener"));
      return this;
    }

    /**
     * The QUIC engine: {@code "kwik"} (pure Java, always there) or {@code "native"} (with
     * {@code brpc-quic-netty} on the class path, which is then the default). See {@link
     * QuicServerBuilder#engine} and README.md, "Engines".
     *
     * @param name {@code "kwik"} or {@code "native"}
     * @return this builder
     */
    public Builder<C> engine(String name) {
      quic.engine(name);
      return this;
    }

    /**
     * Writes a qlog file per connection into {@code directory}, for QUIC-level debugging; off
     * by default. Only the native engine writes qlog (kwik logs one WARNING that it ignores
     * it); see {@code QuicServerBuilder.qlogDirectory}.
     *
     * @param directory where the qlog files go (created if missing)
     * @return this builder
     */
    public Builder<C> qlogDirectory(Path directory) {
      quic.qlogDirectory(directory);
      return this;
    }

    /**
     * Configures the channels through which the server calls its clients, before each is
     * built: each client's own channel (behind {@link BrpcServer#clientFromContext()},
     * {@link ConnectedClient#stub()}) and the round-robin channels of {@link
     * BrpcServer#allClients()} and {@link BrpcServer#clientsWithKey}. For what grpc-java
     * configures on a channel builder: client interceptors for every callback, or
     * OpenTelemetry's metrics and tracing for callbacks:
     *
     * <pre>{@code
     * GrpcOpenTelemetry otel = GrpcOpenTelemetry.newBuilder().sdk(openTelemetry).build();
     * BrpcServer.forPort(8443, NamerGrpc::newBlockingStub)
     *     .transport(otel::configureServerBuilder)       // the calls clients make
     *     .callbackChannel(otel::configureChannelBuilder) // the calls the server makes
     * }</pre>
     *
     * @param configure applied to each callback channel's builder; the target and transport
     *     are brpc's
     * @return this builder
     */
    public Builder<C> callbackChannel(Consumer<? super ManagedChannelBuilder<?>> configure) {
      callbackChannel = checkNotNull(configure, "configure");
      quic.callbackChannel(configure);
      return this;
    }

    /**
     * Forwards the calls for services this server does not implement, as raw bytes, to where
     * {@code director} says: typically the connected client that serves them, so that any gRPC
     * caller reaches a chosen agent through this server. See {@link Director}; without one, such
     * calls fail UNIMPLEMENTED. Interceptors see forwarded calls with {@code byte[]} messages.
     * This is the transport's fallback handler registry: a {@code fallbackHandlerRegistry} set
     * through {@link #transport} is replaced.
     *
     * @param director picks each forwarded call's target
     * @return this builder
     */
    public Builder<C> director(Director<C> director) {
      this.director = checkNotNull(director, "director");
      return this;
    }

    /**
     * Direct access to the transport's builder, for settings not offered here. brpc sets the
     * builder's {@code connectHandler} and {@code connectionListener} itself.
     *
     * @param configure changes the transport's server builder
     * @return this builder
     */
    /**
     * Serves the same services, interceptors and limits on TCP too, for networks that pass no
     * UDP and for plain gRPC clients: HTTP/2 with TLS (the same certificate), on grpc-java's
     * Netty transport, on the TCP port of the UDP port's number (bound at {@link #start()}; see
     * {@link BrpcServer#tcpPort()}). Any gRPC client calls it unchanged; such a caller cannot be
     * called back, so {@link BrpcServer#clientFromContext()} fails FAILED_PRECONDITION in its
     * calls (brpc clients connect over QUIC). QUIC-only settings ({@link #transport}, {@link
     * #engine}, {@link #idleTimeout}, {@link #qlogDirectory}) do not apply to it.
     *
     * @return this builder
     */
    public Builder<C> tcp() {
      tcpSamePort = true;
      tcpAddress = null;
      return this;
    }

    /**
     * As {@link #tcp()}, on {@code address} (port 0 picks a free one).
     *
     * @param address the local TCP address to bind
     * @return this builder
     */
    public Builder<C> tcp(SocketAddress address) {
      tcpAddress = checkNotNull(address, "address");
      tcpSamePort = false;
      return this;
    }

    public Builder<C> transport(Consumer<QuicServerBuilder> configure) {
      configure.accept(quic);
      return this;
    }

    /**
     * Builds the server; {@link BrpcServer#start()} binds it.
     *
     * @return the new server, not yet started
     */
    /** The TCP side's factory: given the UDP port bound, a Netty server with the same settings. */
    private java.util.function.IntFunction<Server> tcpSide(BrpcServer<C> brpc,
        ClientRegistry<C> registry, Forwarder<C> forwarder) {
      checkState(tlsKeyStore != null, "tcp() needs useTransportSecurity(...) or keyStore(...)");
      List<Consumer<NettyServerBuilder>> settings = new ArrayList<>(tcpSettings);
      List<BindableService> made = new ArrayList<>();
      for (Function<? super BrpcServer<C>, ? extends BindableService> f : serviceFactories) {
        made.add(f.apply(brpc));
      }
      javax.net.ssl.KeyManager[] keyManagers;
      try {
        KeyStore single = KeyStore.getInstance("PKCS12");
        single.load(null, null);
        single.setKeyEntry(tlsAlias, tlsKeyStore.getKey(tlsAlias, tlsPassword), tlsPassword,
            tlsKeyStore.getCertificateChain(tlsAlias));
        javax.net.ssl.KeyManagerFactory kmf = javax.net.ssl.KeyManagerFactory.getInstance(
            javax.net.ssl.KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(single, tlsPassword);
        keyManagers = kmf.getKeyManagers();
      } catch (java.security.GeneralSecurityException | IOException e) {
        throw new IllegalArgumentException("cannot use the key entry \"" + tlsAlias
            + "\" for TLS over TCP: " + e, e);
      }
      io.grpc.ServerCredentials credentials =
          io.grpc.TlsServerCredentials.newBuilder().keyManager(keyManagers).build();
      SocketAddress explicit = tcpAddress;
      SocketAddress udp = quicAddress;
      return udpPort -> {
        SocketAddress address = explicit != null ? explicit
            : udp instanceof java.net.InetSocketAddress i && !i.isUnresolved()
                ? new java.net.InetSocketAddress(i.getAddress(), udpPort)
                : new java.net.InetSocketAddress(udpPort);
        NettyServerBuilder b = NettyServerBuilder.forAddress(address, credentials);
        for (Consumer<NettyServerBuilder> s : settings) {
          s.accept(b);
        }
        for (BindableService service : made) {
          b.addService(service);
        }
        if (forwarder != null) {
          b.fallbackHandlerRegistry(forwarder);
        }
        // Runs first: marks the call as a plain gRPC caller, which cannot be called back.
        b.intercept(registry.plainCallers());
        return b.build();
      };
    }

    public BrpcServer<C> build() {
      checkState(!built, "build() was already called");
      built = true;
      ClientRegistry<C> registry = new ClientRegistry<>(clientService, authenticator, affinity,
          listeners, maxInboundMessageSize, callbackChannel);
      BrpcServer<C> brpc = new BrpcServer<>(registry);
      for (Function<? super BrpcServer<C>, ? extends BindableService> f : serviceFactories) {
        quic.addService(checkNotNull(f.apply(brpc), "service factory returned null"));
      }
      Forwarder<C> forwarder = null;
      if (director != null) {
        forwarder = new Forwarder<>(director, brpc, registry.caller::get);
        quic.fallbackHandlerRegistry(forwarder);
      }
      // Added last, so it runs first: user interceptors already see the caller.
      quic.intercept(registry);
      quic.connectHandler(registry);
      quic.connectionListener(registry);
      brpc.server = quic.build();
      if (tcpSamePort || tcpAddress != null) {
        brpc.tcpFactory = tcpSide(brpc, registry, forwarder);
      }
      return brpc;
    }
  }
}
