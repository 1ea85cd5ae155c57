package dev.brpc.quic;

import io.grpc.Attributes;
import io.grpc.Metadata;

/**
 * Transport attributes of a brpc QUIC connection, visible on every call in both directions
 * ({@code ServerCall.getAttributes()}, {@code ClientCall.getAttributes()}), next to grpc's own
 * {@link io.grpc.Grpc#TRANSPORT_ATTR_REMOTE_ADDR} and {@link io.grpc.Grpc#TRANSPORT_ATTR_LOCAL_ADDR}.
 *
 * <p>They come from the connection the call travels on, never from call metadata, so a peer
 * cannot forge them:
 *
 * <pre>{@code
 * // in a ServerInterceptor
 * String connectionId = call.getAttributes().get(QuicAttributes.CONNECTION_ID);
 * Object identity = call.getAttributes().get(QuicAttributes.PEER_IDENTITY);
 * }</pre>
 *
 * <p>Immutable; thread-safe.
 */
public final class QuicAttributes {
  private QuicAttributes() {}

  /** This process's id for the connection, e.g. {@code quic-17}; unique per process. */
  public static final Attributes.Key<String> CONNECTION_ID =
      Attributes.Key.create("dev.brpc.quic.connectionId");

  /**
   * The metadata the peer sent in its SETTINGS when the connection was set up: a client's
   * connect metadata (e.g. credentials) on the server, the server's reply on the client.
   */
  public static final Attributes.Key<Metadata> PEER_METADATA =
      Attributes.Key.create("dev.brpc.quic.peerMetadata");

  /**
   * The identity a server's {@link ConnectHandler} attached to the connection, if any. Only
   * set on the server side.
   */
  public static final Attributes.Key<Object> PEER_IDENTITY =
      Attributes.Key.create("dev.brpc.quic.peerIdentity");
}
