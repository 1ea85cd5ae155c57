package dev.brpc.quic;

import io.grpc.Attributes;
import io.grpc.Metadata;
import io.grpc.StatusException;
import java.net.SocketAddress;

/**
 * Admits or refuses a client when its connection is set up, before any call is accepted.
 * kwik's server cannot ask for client certificates, so this is where clients authenticate:
 * they send connect metadata ({@link QuicChannelBuilder#connectMetadata}) in their SETTINGS.
 *
 * <pre>{@code
 * ConnectHandler auth = (metadata, remote) -> {
 *   String token = metadata.get(TOKEN_KEY);
 *   if (!tokens.isValid(token)) {
 *     throw Status.UNAUTHENTICATED.withDescription("bad token").asException();
 *   }
 *   return ConnectResult.accept().withIdentity(tokens.user(token));
 * };
 * }</pre>
 *
 * <p>A refused client's connection is closed with the status's code and description, and its
 * calls fail with that status. Runs on a transport thread; may block briefly.
 */
@FunctionalInterface
public interface ConnectHandler {
  /**
   * Decides on a new connection, or throws the status to refuse it with.
   *
   * @param connectMetadata the metadata the client sent in its SETTINGS; empty if it sent none
   * @param remoteAddress the client's address
   * @return the admission: the identity, attributes and reply for the connection
   * @throws StatusException to refuse the client with this status
   */
  ConnectResult onConnect(Metadata connectMetadata, SocketAddress remoteAddress)
      throws StatusException;

  /** The admission of one connection: identity, extra attributes and reply metadata. */
  final class ConnectResult {
    private final Object identity;
    private final Attributes attributes;
    private final Metadata reply;

    private ConnectResult(Object identity, Attributes attributes, Metadata reply) {
      this.identity = identity;
      this.attributes = attributes;
      this.reply = reply;
    }

    /**
     * Admits the client with no identity, attributes or reply.
     *
     * @return an admission with nothing set
     */
    public static ConnectResult accept() {
      return new ConnectResult(null, Attributes.EMPTY, new Metadata());
    }

    /**
     * Sets {@link QuicAttributes#PEER_IDENTITY} on every call of this connection.
     *
     * @param identity the peer's identity, such as a user name or principal
     * @return a copy of this result with the identity set
     */
    public ConnectResult withIdentity(Object identity) {
      return new ConnectResult(identity, attributes, reply);
    }

    /**
     * Adds transport attributes to every call of this connection.
     *
     * @param attributes the attributes to add
     * @return a copy of this result with the attributes set
     */
    public ConnectResult withAttributes(Attributes attributes) {
      return new ConnectResult(identity, attributes, reply);
    }

    /**
     * Metadata sent back to the client in the server's SETTINGS.
     *
     * @param reply the metadata to send back
     * @return a copy of this result with the reply set
     */
    public ConnectResult withReply(Metadata reply) {
      return new ConnectResult(identity, attributes, reply);
    }

    /**
     * The identity set by {@link #withIdentity}, or null.
     *
     * @return the peer's identity, or null if none was set
     */
    public Object identity() {
      return identity;
    }

    /**
     * The attributes set by {@link #withAttributes}; empty by default.
     *
     * @return the transport attributes for the connection's calls
     */
    public Attributes attributes() {
      return attributes;
    }

    /**
     * The metadata set by {@link #withReply}; empty by default.
     *
     * @return the metadata for the server's SETTINGS
     */
    public Metadata reply() {
      return reply;
    }
  }
}
