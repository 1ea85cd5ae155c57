package dev.brpc;

import dev.brpc.quic.ConnectionInfo;
import dev.brpc.quic.PeerConnection;
import io.grpc.Channel;
import io.grpc.Metadata;
import java.net.SocketAddress;
import java.time.Instant;
import java.util.UUID;

/**
 * One client connected to a {@link BrpcServer}: its id, the stub and channel that call it, and
 * what the server knows of it. Obtained from {@link BrpcServer#clients()},
 * {@link BrpcServer#client(UUID)}, {@link BrpcServer#callerFromContext()} or a
 * {@link ClientListener}.
 *
 * <pre>{@code
 * for (ConnectedClient<NamerGrpc.NamerStub> client : server.clients()) {
 *   client.stub().name(request, observerFor(client.id()));
 * }
 * }</pre>
 *
 * <p>Calls through {@link #stub()} or {@link #channel()} reach this client's connection and no
 * other; once the client is gone they fail UNAVAILABLE. A client that reconnects is a new
 * {@code ConnectedClient} with a new id.
 *
 * <p>Immutable and thread-safe.
 *
 * @param <C> the server's client stub type
 */
public final class ConnectedClient<C> {
  private final UUID id;
  private final PeerConnection connection;
  private final C stub;
  private final Object identity;
  private final Instant connectedAt;
  private final Object affinityKey;

  ConnectedClient(UUID id, PeerConnection connection, C stub, Object identity,
      Instant connectedAt, Object affinityKey) {
    this.id = id;
    this.connection = connection;
    this.stub = stub;
    this.identity = identity;
    this.connectedAt = connectedAt;
    this.affinityKey = affinityKey;
  }

  /**
   * The id the server gave this connection (random, from {@code SecureRandom}).
   *
   * @return the connection's id
   */
  public UUID id() {
    return id;
  }

  /**
   * The stub, built by the server's {@link ClientServiceBuilder}, that calls this client.
   *
   * @return the client's stub
   */
  public C stub() {
    return stub;
  }

  /**
   * A channel to this client, for stubs of other services it serves.
   *
   * @return a channel to the client
   */
  public Channel channel() {
    return connection.channel();
  }

  /**
   * The client's address as the server sees it.
   *
   * @return the client's remote address
   */
  public SocketAddress remoteAddress() {
    return connection.remoteAddress();
  }

  /**
   * What the {@link Authenticator} returned; null if the server has none.
   *
   * @return the client's identity, or null
   */
  public Object identity() {
    return identity;
  }

  /**
   * A copy of the metadata the client connected with.
   *
   * @return the client's connect metadata
   */
  public Metadata connectMetadata() {
    return connection.peerMetadata();
  }

  /**
   * When the server admitted this client.
   *
   * @return the time the client was admitted
   */
  public Instant connectedAt() {
    return connectedAt;
  }

  /**
   * The client's affinity key (see {@link BrpcServer.Builder#affinity}); null if none.
   *
   * @return the affinity key, or null
   */
  public Object affinityKey() {
    return affinityKey;
  }

  /**
   * What is known of the client's connection now: the engine, round-trip time, bytes and
   * packets sent and received, lost packets, open calls, connected since (see
   * {@link ConnectionInfo} for what each engine counts). On the native engine this waits, at
   * most a second, for its event loop to collect the figures: for diagnostics and dashboards,
   * not per call.
   *
   * @return a snapshot of the connection
   */
  public ConnectionInfo info() {
    return connection.info();
  }

  /**
   * False once the client's connection has closed.
   *
   * @return true while the connection is open
   */
  public boolean isConnected() {
    return connection.isOpen();
  }

  @Override
  public String toString() {
    return "client " + id + " at " + connection.remoteAddress()
        + (identity != null ? " (" + identity + ")" : "");
  }
}
