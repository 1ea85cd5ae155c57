package dev.brpc;

import dev.brpc.quic.ConnectHandler;
import dev.brpc.quic.PeerConnection;
import dev.brpc.quic.PeerGroup;
import dev.brpc.quic.QuicAttributes;
import dev.brpc.quic.QuicConnectionListener;
import io.grpc.Attributes;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.Contexts;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.StatusException;
import java.net.SocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The server's side of brpc: admits clients (id, authentication), keeps the registry of
 * connected clients and their groups, and puts the calling client into each call's
 * {@link Context}.
 *
 * <p>The caller of a call is found from the transport attributes of the connection the call
 * arrived on ({@link #CLIENT_ID}, set at admission), never from anything the client sends, so
 * a client that learns another's id cannot make itself the other.
 *
 * <p>Thread-safe. Admission and listener callbacks run on transport threads.
 *
 * @param <C> the client stub type
 */
final class ClientRegistry<C> implements ConnectHandler, QuicConnectionListener,
    ServerInterceptor {
  /** The id the server gave a connection, among its transport attributes. */
  static final Attributes.Key<UUID> CLIENT_ID = Attributes.Key.create("dev.brpc.clientId");
  /** The id, as the server's SETTINGS tell it to the client. */
  static final Metadata.Key<String> CLIENT_ID_HEADER =
      Metadata.Key.of("brpc-client-id", Metadata.ASCII_STRING_MARSHALLER);

  /** Per registry, so servers of different stub types in one JVM never mix their callers. */
  final Context.Key<ConnectedClient<C>> caller = Context.key("brpc-caller");
  private final ClientServiceBuilder<C> builder;
  private final Authenticator authenticator;
  private final Function<? super ConnectedClient<C>, ?> affinity;
  private final List<ClientListener<C>> listeners;
  private final int maxInboundMessageSize;
  /** Applied to the group channels' builders; null for nothing. */
  private final Consumer<? super ManagedChannelBuilder<?>> channelConfig;
  private final Map<UUID, ConnectedClient<C>> clients = new ConcurrentHashMap<>();
  private final ClientsChannel<C> all;
  private final Map<Object, ClientsChannel<C>> byKey = new ConcurrentHashMap<>();

  ClientRegistry(ClientServiceBuilder<C> builder, Authenticator authenticator,
      Function<? super ConnectedClient<C>, ?> affinity, List<ClientListener<C>> listeners,
      int maxInboundMessageSize, Consumer<? super ManagedChannelBuilder<?>> channelConfig) {
    this.builder = builder;
    this.authenticator = authenticator;
    this.affinity = affinity;
    this.listeners = List.copyOf(listeners);
    this.maxInboundMessageSize = maxInboundMessageSize;
    this.channelConfig = channelConfig;
    this.all = new ClientsChannel<>(newGroup(), builder);
  }

  // ConnectHandler: admission.

  @Override
  public ConnectResult onConnect(Metadata connectMetadata, SocketAddress remoteAddress)
      throws StatusException {
    Object identity = null;
    if (authenticator != null) {
      identity = authenticator.authenticate(connectMetadata, remoteAddress);
      if (identity == null) {
        throw Status.INTERNAL.withDescription("the server's authenticator returned no identity")
            .asException();
      }
    }
    UUID id = UUID.randomUUID(); // SecureRandom-backed
    Metadata reply = new Metadata();
    reply.put(CLIENT_ID_HEADER, id.toString());
    return ConnectResult.accept()
        .withIdentity(identity)
        .withAttributes(Attributes.newBuilder().set(CLIENT_ID, id).build())
        .withReply(reply);
  }

  // QuicConnectionListener: the registry.

  @Override
  public void connected(PeerConnection connection) {
    UUID id = connection.attributes().get(CLIENT_ID);
    Object identity = connection.attributes().get(QuicAttributes.PEER_IDENTITY);
    C stub = builder.build(connection.channel());
    Instant now = Instant.now();
    Object key = null;
    if (affinity != null) {
      key = affinity.apply(new ConnectedClient<>(id, connection, stub, identity, now, null));
    }
    ConnectedClient<C> client = new ConnectedClient<>(id, connection, stub, identity, now, key);
    clients.put(id, client);
    if (!connection.isOpen()) {
      // Closed while being admitted: disconnected() may have run before the put.
      clients.remove(id, client);
      return;
    }
    all.group().add(connection);
    if (key != null) {
      withKey(key).group().add(connection);
    }
    ListenerCalls.fire(listeners, l -> l.connected(client), "ClientListener.connected");
  }

  @Override
  public void disconnected(PeerConnection connection, Status status) {
    UUID id = connection.attributes().get(CLIENT_ID);
    ConnectedClient<C> client = id == null ? null : clients.remove(id);
    if (client == null) {
      return;
    }
    // Groups drop the connection by themselves when it closes.
    ListenerCalls.fire(listeners, l -> l.disconnected(client, status),
        "ClientListener.disconnected");
  }

  // ServerInterceptor: the caller, from the connection.

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    UUID id = call.getAttributes().get(CLIENT_ID);
    ConnectedClient<C> client = id == null ? null : clients.get(id);
    if (client == null) {
      return next.startCall(call, headers);
    }
    return Contexts.interceptCall(Context.current().withValue(caller, client), call, headers,
        next);
  }

  /**
   * The peer address of a call that came over the server's TCP side (a plain gRPC client),
   * which cannot be called back; set by {@link #plainCallers()}.
   */
  private final Context.Key<java.net.SocketAddress> plainCaller = Context.key("brpc-plain-caller");

  /** For the TCP side: marks each call's Context as a plain gRPC caller's. */
  ServerInterceptor plainCallers() {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call,
          Metadata headers, ServerCallHandler<Q, R> next) {
        java.net.SocketAddress remote = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        return Contexts.interceptCall(Context.current().withValue(plainCaller,
            remote != null ? remote : new java.net.InetSocketAddress(0)), call, headers, next);
      }
    };
  }

  /** {@code method} names the public method called, for the error message. */
  ConnectedClient<C> callerOf(Context context, String method) {
    ConnectedClient<C> client = caller.get(context);
    java.net.SocketAddress plain = plainCaller.get(context);
    if (client == null && plain != null) {
      throw Status.FAILED_PRECONDITION.withDescription("the caller (" + plain + ") is a plain"
          + " gRPC client over TCP: it cannot be called back, so " + method + "() has no client"
          + " for this call; only brpc clients, connected over QUIC, serve callbacks")
          .asRuntimeException();
    }
    if (client == null) {
      throw Status.FAILED_PRECONDITION.withDescription("no brpc client in this context: call "
          + method + "() inside a handler of this server, on the handler's thread or in its"
          + " Context").asRuntimeException();
    }
    return client;
  }

  C clientOf(Context context) {
    ConnectedClient<C> client = callerOf(context, "clientFromContext");
    if (!client.isConnected()) {
      throw Status.UNAVAILABLE.withDescription(client + " has disconnected").asRuntimeException();
    }
    return client.stub();
  }

  List<ConnectedClient<C>> clients() {
    return new ArrayList<>(clients.values());
  }

  Optional<ConnectedClient<C>> client(UUID id) {
    return Optional.ofNullable(clients.get(id));
  }

  ClientsChannel<C> all() {
    return all;
  }

  ClientsChannel<C> withKey(Object key) {
    return byKey.computeIfAbsent(key, k -> new ClientsChannel<>(newGroup(), builder));
  }

  private PeerGroup newGroup() {
    return PeerGroup.create("brpc-clients", maxInboundMessageSize, channelConfig);
  }

  /** Refuses new calls on the group channels; with {@code now}, cancels those in flight. */
  void shutdown(boolean now) {
    List<ClientsChannel<C>> channels = new ArrayList<>(byKey.values());
    channels.add(all);
    for (ClientsChannel<C> c : channels) {
      if (now) {
        c.group().shutdownNow();
      } else {
        c.group().shutdown();
      }
    }
  }
}
