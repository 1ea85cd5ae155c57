package dev.brpc;

import io.grpc.Metadata;
import io.grpc.StatusException;
import java.net.SocketAddress;

/**
 * Decides, once per connection, whether a client may connect, from the metadata it sent with
 * {@link BrpcClient.Builder#connectMetadata} and its address. The identity it returns is
 * visible to every handler serving that client ({@link ConnectedClient#identity()}, through
 * {@link BrpcServer#callerFromContext()}) and in the registry.
 *
 * <pre>{@code
 * Metadata.Key<String> TOKEN = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
 * builder.authenticator((metadata, address) -> {
 *   User user = users.byToken(metadata.get(TOKEN));
 *   if (user == null) {
 *     throw Status.UNAUTHENTICATED.withDescription("unknown token").asException();
 *   }
 *   return user;
 * });
 * }</pre>
 *
 * <p>Runs on a transport thread before the client is admitted: it may take a moment (a lookup),
 * bounded by the server's handshake timeout, but should not wait on calls to that client.
 */
@FunctionalInterface
public interface Authenticator {
  /**
   * Returns the client's identity (never null), or throws: the client's
   * {@link BrpcClient#connect()} then fails with the thrown status, code and description.
   *
   * @param connectMetadata the metadata the client sent when connecting
   * @param remoteAddress the client's address
   * @return the client's identity
   * @throws StatusException to refuse the client with this status
   */
  Object authenticate(Metadata connectMetadata, SocketAddress remoteAddress)
      throws StatusException;
}
