package dev.brpc;

import static com.google.common.base.Preconditions.checkNotNull;
import static com.google.common.base.Preconditions.checkState;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.ConnectionInfo;
import dev.brpc.quic.PeerConnection;
import dev.brpc.quic.QuicChannelBuilder;
import dev.brpc.quic.QuicConnectionListener;
import dev.brpc.quic.QuicServerBuilder;
import io.grpc.BindableService;
import io.grpc.Channel;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerInterceptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.SocketAddress;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.net.ssl.X509TrustManager;

/**
 * A client of a {@link BrpcServer} that serves its own gRPC services to that server, over one
 * QUIC connection. It reconnects by itself when the connection drops, with grpc's exponential
 * backoff; each connection gets a new id from the server.
 *
 * <pre>{@code
 * try (BrpcClient client = BrpcClient.forAddress("localhost", 8443)
 *     .trustCertificates(new File("cert.pem"))
 *     .addService(new NamerGrpc.NamerImplBase() {
 *       public void name(NameRequest request, StreamObserver<NameReply> reply) {
 *         reply.onNext(NameReply.newBuilder().setName("Ada").build());
 *         reply.onCompleted();
 *       }
 *     })
 *     .build()) {
 *   UUID id = client.connect();
 *   GreetReply greeting = GreeterGrpc.newBlockingStub(client.channel())
 *       .greet(GreetRequest.getDefaultInstance()); // the server calls Namer back meanwhile
 * }
 * }</pre>
 *
 * <p>Calls on {@link #channel()} while disconnected behave as on any grpc channel: they fail
 * UNAVAILABLE, or wait for the connection if made {@code withWaitForReady()}.
 *
 * <p>Thread-safe.
 */
public final class BrpcClient implements AutoCloseable {
  private static final Logger log = Logger.getLogger(BrpcClient.class.getName());
  private static final long CLOSE_GRACE_SECONDS = 30;

  /** Hears the client's connections come and go. Runs on a transport thread: return quickly. */
  public interface Listener {
    /**
     * Connected; {@code id} is the id the server gave this connection.
     *
     * @param id the connection's id
     */
    default void connected(UUID id) {}

    /**
     * The connection with {@code id} is gone; the client reconnects unless closed.
     *
     * @param id the id of the connection that is gone
     * @param status why it is gone
     */
    default void disconnected(UUID id, Status status) {}

    /**
     * An attempt to connect failed (unreachable, untrusted, refused); it will be retried.
     *
     * @param status why the attempt failed
     */
    default void connectFailed(Status status) {}
  }

  private final ManagedChannel channel;
  private final Server callbacks;
  private final List<Listener> listeners;
  private final Object lock = new Object();
  @GuardedBy("lock") private UUID id;
  @GuardedBy("lock") private boolean connected;
  @GuardedBy("lock") private PeerConnection connection;
  @GuardedBy("lock") private Status lastFailure;
  @GuardedBy("lock") private long failures;
  @GuardedBy("lock") private boolean watching;
  @GuardedBy("lock") private boolean closed;

  private BrpcClient(QuicChannelBuilder quic, Server callbacks, List<Listener> listeners) {
    this.callbacks = callbacks;
    this.listeners = List.copyOf(listeners);
    this.channel = quic.callbackServer(callbacks).connectionListener(new Events()).build();
  }

  /**
   * A builder for a client of the server at {@code host:port}.
   *
   * @param host the server's host name
   * @param port the server's UDP port
   * @return a new builder
   */
  public static Builder forAddress(String host, int port) {
    return new Builder(QuicChannelBuilder.forAddress(host, port));
  }

  /**
   * Connects, if not connected, and returns the connection's id. Fails with the status of the
   * first attempt that fails: UNAVAILABLE if the server cannot be reached, or the status of a
   * server that refused the client (UNAUTHENTICATED from its {@link Authenticator}, say). The
   * client keeps trying in the background either way, until closed.
   *
   * <p>From the first {@code connect} on, the client keeps itself connected, so the server can
   * reach it at any time. Without it the channel connects lazily, on the first call, as grpc
   * channels do, and does not reconnect until the next call.
   *
   * @return the connection's id
   * @throws StatusRuntimeException the failed attempt's status
   */
  public UUID connect() {
    return await(false, Long.MAX_VALUE);
  }

  /**
   * Connects, waiting through failed attempts (retried with backoff) for up to
   * {@code timeout}. A refusal by the server's authenticator (UNAUTHENTICATED or
   * PERMISSION_DENIED) fails at once.
   *
   * @param timeout how long to keep trying
   * @param unit the unit of {@code timeout}
   * @return the connection's id
   * @throws StatusRuntimeException DEADLINE_EXCEEDED, with the last failure, when time is up;
   *     the refusal's status if refused
   */
  public UUID connect(long timeout, TimeUnit unit) {
    return await(true, System.nanoTime() + unit.toNanos(timeout));
  }

  private UUID await(boolean throughFailures, long deadline) {
    long failuresBefore;
    synchronized (lock) {
      checkState(!closed, "client is closed");
      if (connected) {
        return id;
      }
      failuresBefore = failures;
    }
    startWatching();
    channel.getState(true);
    synchronized (lock) {
      while (true) {
        if (connected) {
          return id;
        }
        if (closed) {
          throw Status.UNAVAILABLE.withDescription("client closed while connecting")
              .asRuntimeException();
        }
        if (failures > failuresBefore) {
          Status.Code code = lastFailure.getCode();
          if (!throughFailures || code == Status.Code.UNAUTHENTICATED
              || code == Status.Code.PERMISSION_DENIED) {
            throw lastFailure.asRuntimeException();
          }
        }
        long left = deadline == Long.MAX_VALUE ? Long.MAX_VALUE : deadline - System.nanoTime();
        if (left <= 0) {
          throw Status.DEADLINE_EXCEEDED.withDescription("not connected in time"
              + (lastFailure != null ? "; last attempt: " + lastFailure : ""))
              .asRuntimeException();
        }
        try {
          if (left == Long.MAX_VALUE) {
            lock.wait();
          } else {
            TimeUnit.NANOSECONDS.timedWait(lock, left);
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw Status.CANCELLED.withDescription("interrupted while connecting").withCause(e)
              .asRuntimeException();
        }
      }
    }
  }

  /**
   * Keeps the client connected: whenever the channel falls idle (its connection dropped), ask
   * for a new connection at once. Failed attempts are retried by grpc with its exponential
   * backoff (1 s, growing 1.6 times to 2 minutes, ±20% jitter), which also keeps clients cut
   * off together from coming back together; {@link Builder#connectTimeout} keeps each attempt
   * toward a silent server short.
   */
  private void startWatching() {
    synchronized (lock) {
      if (watching) {
        return;
      }
      watching = true;
    }
    watch(channel.getState(false));
  }

  private void watch(ConnectivityState state) {
    synchronized (lock) {
      if (closed) {
        return;
      }
    }
    if (state == ConnectivityState.SHUTDOWN) {
      return;
    }
    if (state == ConnectivityState.IDLE) {
      state = channel.getState(true);
    }
    channel.notifyWhenStateChanged(state, () -> watch(channel.getState(false)));
  }

  /**
   * The id of the current connection, or of the last one while reconnecting.
   *
   * @return the connection's id
   */
  public UUID id() {
    synchronized (lock) {
      checkState(id != null, "not connected yet: call connect() first");
      return id;
    }
  }

  /**
   * True while connected.
   *
   * @return whether the client is connected now
   */
  public boolean isConnected() {
    synchronized (lock) {
      return connected;
    }
  }

  /**
   * The channel for calls to the server, for any stub. Closed with the client.
   *
   * @return the channel to the server
   */
  public Channel channel() {
    return channel;
  }

  /**
   * Stops: no new calls in either direction (they fail UNAVAILABLE); calls in flight, either
   * way, finish, then the connection closes. Returns at once.
   *
   * @return this client
   */
  public BrpcClient shutdown() {
    markClosed();
    channel.shutdown();
    callbacks.shutdown();
    return this;
  }

  /**
   * As {@link #shutdown()}, and cancels the calls in flight in both directions.
   *
   * @return this client
   */
  public BrpcClient shutdownNow() {
    markClosed();
    channel.shutdownNow();
    callbacks.shutdownNow();
    return this;
  }

  private void markClosed() {
    synchronized (lock) {
      closed = true;
      lock.notifyAll();
    }
  }

  /**
   * What is known of the current connection to the server: the engine, round-trip time, bytes
   * and packets sent and received, lost packets, open calls, connected since (see
   * {@link ConnectionInfo} for what each engine counts). On the native engine this waits, at
   * most a second, for its event loop to collect the figures.
   *
   * @return the connection's facts; empty while not connected
   */
  public Optional<ConnectionInfo> connectionInfo() {
    PeerConnection c;
    synchronized (lock) {
      c = connected ? connection : null;
    }
    return c == null ? Optional.empty() : Optional.of(c.info());
  }

  /**
   * Waits up to {@code timeout} for the client to terminate after a shutdown.
   *
   * @param timeout how long to wait
   * @param unit the unit of {@code timeout}
   * @return true if the client terminated, false if time ran out first
   * @throws InterruptedException if interrupted while waiting
   */
  public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
    long deadline = System.nanoTime() + unit.toNanos(timeout);
    return channel.awaitTermination(timeout, unit)
        && callbacks.awaitTermination(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
  }

  /**
   * Whether the client is shut down and every call in either direction has finished.
   *
   * @return true once the client has terminated
   */
  public boolean isTerminated() {
    return channel.isTerminated() && callbacks.isTerminated();
  }

  /**
   * {@link #shutdown()}, waits up to 30 seconds for calls in flight, then cancels what is left;
   * returns when the connection and its threads are released.
   */
  @Override
  public void close() {
    shutdown();
    try {
      if (!awaitTermination(CLOSE_GRACE_SECONDS, TimeUnit.SECONDS)) {
        shutdownNow();
        awaitTermination(CLOSE_GRACE_SECONDS, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  /** The transport's connection events. Runs on transport threads. */
  private final class Events implements QuicConnectionListener {
    @Override
    public void connected(PeerConnection connection) {
      String header = connection.peerMetadata().get(ClientRegistry.CLIENT_ID_HEADER);
      UUID newId;
      try {
        newId = UUID.fromString(String.valueOf(header));
      } catch (IllegalArgumentException e) {
        log.log(Level.WARNING, "server sent no valid client id (" + header + "); is it a"
            + " BrpcServer?");
        return;
      }
      synchronized (lock) {
        id = newId;
        connected = true;
        BrpcClient.this.connection = connection;
        lock.notifyAll();
      }
      ListenerCalls.fire(listeners, l -> l.connected(newId), "BrpcClient.Listener.connected");
    }

    @Override
    public void disconnected(PeerConnection connection, Status status) {
      UUID oldId;
      synchronized (lock) {
        oldId = id;
        connected = false;
        if (BrpcClient.this.connection == connection) {
          BrpcClient.this.connection = null;
        }
      }
      ListenerCalls.fire(listeners, l -> l.disconnected(oldId, status),
          "BrpcClient.Listener.disconnected");
    }

    @Override
    public void connectFailed(SocketAddress server, Status status) {
      synchronized (lock) {
        lastFailure = status;
        failures++;
        lock.notifyAll();
      }
      ListenerCalls.fire(listeners, l -> l.connectFailed(status),
          "BrpcClient.Listener.connectFailed");
    }
  }

  /**
   * Configures a {@link BrpcClient}. Settings not offered here are reached through
   * {@link #transport}.
   *
   * <p>Not thread-safe.
   */
  public static final class Builder {
    private final QuicChannelBuilder quic;
    private final QuicServerBuilder callbacks = QuicServerBuilder.forCallbacks();
    private final List<Listener> listeners = new ArrayList<>();
    private boolean built;

    private Builder(QuicChannelBuilder quic) {
      this.quic = quic.connectTimeout(10, TimeUnit.SECONDS);
    }

    /**
     * A service the server may call on this client.
     *
     * @param service the service to add
     * @return this builder
     */
    public Builder addService(BindableService service) {
      callbacks.addService(service);
      return this;
    }

    /**
     * A service the server may call on this client.
     *
     * @param service the service to add
     * @return this builder
     */
    public Builder addService(ServerServiceDefinition service) {
      callbacks.addService(service);
      return this;
    }

    /**
     * An interceptor for every call the server makes to this client.
     *
     * @param interceptor the interceptor to add
     * @return this builder
     */
    public Builder intercept(ServerInterceptor interceptor) {
      callbacks.intercept(interceptor);
      return this;
    }

    /**
     * Trusts the server certificates (or their CAs) in a PEM file.
     *
     * @param pem a file of PEM certificates
     * @return this builder
     */
    public Builder trustCertificates(File pem) {
      quic.trustCertificates(pem);
      return this;
    }

    /**
     * Trusts the certificates in a PEM stream; it is read before this returns.
     *
     * @param pem a stream of PEM certificates
     * @return this builder
     */
    public Builder trustCertificates(InputStream pem) {
      quic.trustCertificates(pem);
      return this;
    }

    /**
     * Trusts exactly this certificate (pinning).
     *
     * @param certificate the certificate to trust
     * @return this builder
     */
    public Builder trustCertificate(X509Certificate certificate) {
      quic.trustCertificate(certificate);
      return this;
    }

    /**
     * Trusts the certificates of a key store.
     *
     * @param trustStore the key store holding the trusted certificates
     * @return this builder
     */
    public Builder trustStore(KeyStore trustStore) {
      quic.trustStore(trustStore);
      return this;
    }

    /**
     * Verifies the server with this trust manager.
     *
     * @param trustManager verifies the server's certificate chain
     * @return this builder
     */
    public Builder trustManager(X509TrustManager trustManager) {
      quic.trustManager(trustManager);
      return this;
    }

    /**
     * Accepts any server certificate. Never in production.
     *
     * @return this builder
     */
    public Builder disableCertificateVerificationForDevelopmentOnly() {
      quic.disableCertificateVerificationForDevelopmentOnly();
      return this;
    }

    /**
     * Metadata sent when connecting (a bearer token, say), for the server's authenticator.
     *
     * @param metadata the metadata to send
     * @return this builder
     */
    public Builder connectMetadata(Metadata metadata) {
      quic.connectMetadata(metadata);
      return this;
    }

    /**
     * As {@link #connectMetadata(Metadata)}, asked anew for every connection (fresh tokens).
     *
     * @param metadata supplies the metadata for each new connection
     * @return this builder
     */
    public Builder connectMetadata(Supplier<Metadata> metadata) {
      quic.connectMetadata(metadata);
      return this;
    }

    /**
     * Runs the handlers of this client's services, and call callbacks, on {@code executor}.
     *
     * @param executor the executor for handlers and callbacks
     * @return this builder
     */
    public Builder executor(Executor executor) {
      quic.executor(executor);
      callbacks.executor(executor);
      return this;
    }

    /**
     * The largest message accepted, in responses and in the server's calls (default 4 MiB).
     *
     * @param bytes the largest message size, in bytes
     * @return this builder
     */
    public Builder maxInboundMessageSize(int bytes) {
      quic.maxInboundMessageSize(bytes);
      callbacks.maxInboundMessageSize(bytes);
      return this;
    }

    /**
     * Pings the server after this long without hearing from it (default: off).
     *
     * @param time how long without hearing from the server before a ping
     * @param unit the unit of {@code time}
     * @return this builder
     */
    public Builder keepAliveTime(long time, TimeUnit unit) {
      quic.keepAliveTime(time, unit);
      return this;
    }

    /**
     * Drops the connection when a keepalive ping is not answered within this.
     *
     * @param timeout how long to wait for a ping's answer
     * @param unit the unit of {@code timeout}
     * @return this builder
     */
    public Builder keepAliveTimeout(long timeout, TimeUnit unit) {
      quic.keepAliveTimeout(timeout, unit);
      return this;
    }

    /**
     * QUIC's idle timeout (default 30 s). The client keeps a quiet connection open by itself;
     * this bounds how long a silently dead server goes unnoticed.
     *
     * @param timeout the idle timeout
     * @param unit the unit of {@code timeout}
     * @return this builder
     */
    public Builder idleTimeout(long timeout, TimeUnit unit) {
      quic.quicIdleTimeout(timeout, unit);
      return this;
    }

    /**
     * How long one connection attempt waits for the server's first packet (default 10 s);
     * once the server answers, the handshake is not cut short. Failed attempts are retried
     * after grpc's backoff. Within an attempt kwik retransmits its first packet at ever longer
     * intervals (about 1.5, 3 and 6 s), so a shorter timeout notices sooner that a server or a
     * network is back after an outage (with 2 s: within about a second). But a server that
     * many clients reach at once, after a restart, answers some of them late, and an attempt
     * abandoned before that answer only adds to its load: with 200 clients sharing 2 cores
     * with the server, attempts of 2 s and 5 s (and a 1 s retry cap) took 26-32 s to get
     * everyone back; 10 s attempts with grpc's backoff take under 5 s (RELIABILITY.md).
     *
     * @param timeout how long one attempt waits for the server's first packet
     * @param unit the unit of {@code timeout}
     * @return this builder
     */
    public Builder connectTimeout(long timeout, TimeUnit unit) {
      quic.connectTimeout(timeout, unit);
      return this;
    }

    /**
     * Hears connections come and go.
     *
     * @param listener the listener to add
     * @return this builder
     */
    public Builder addListener(Listener listener) {
      listeners.add(checkNotNull(listener, "listener"));
      return this;
    }

    /**
     * The QUIC engine that dials: {@code "kwik"} (pure Java, always there) or {@code "native"}
     * (with {@code brpc-quic-netty} on the class path, which is then the default). Either
     * connects to a server on either. See {@link QuicChannelBuilder#engine}.
     *
     * @param name {@code "kwik"} or {@code "native"}
     * @return this builder
     */
    public Builder engine(String name) {
      quic.engine(name);
      return this;
    }

    /**
     * Direct access to the transport's channel builder, for settings not offered here. brpc
     * sets the builder's {@code callbackServer} and {@code connectionListener} itself.
     *
     * @param configure changes the transport's channel builder
     * @return this builder
     */
    public Builder transport(Consumer<QuicChannelBuilder> configure) {
      configure.accept(quic);
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
    public Builder qlogDirectory(Path directory) {
      quic.qlogDirectory(directory);
      return this;
    }

    /**
     * Direct access to the builder of the server that serves the client's services to the
     * server (the callbacks): for what grpc-java configures on a server builder, such as
     * stream tracers, or OpenTelemetry's metrics and tracing for the calls the server makes:
     *
     * <pre>{@code
     * GrpcOpenTelemetry otel = GrpcOpenTelemetry.newBuilder().sdk(openTelemetry).build();
     * BrpcClient.forAddress(host, port)
     *     .transport(otel::configureChannelBuilder) // the calls the client makes
     *     .callbacks(otel::configureServerBuilder)  // the calls the server makes to it
     * }</pre>
     *
     * @param configure changes the callback server's builder
     * @return this builder
     */
    public Builder callbacks(Consumer<QuicServerBuilder> configure) {
      configure.accept(callbacks);
      return this;
    }

    /**
     * Builds the client; {@link BrpcClient#connect()} connects it.
     *
     * @return the new client
     */
    public BrpcClient build() {
      checkState(!built, "build() was already called");
      built = true;
      Server server;
      try {
        server = callbacks.build().start();
      } catch (IOException e) {
        throw new UncheckedIOException("cannot start the callback server", e);
      }
      return new BrpcClient(quic, server, listeners);
    }
  }
}
