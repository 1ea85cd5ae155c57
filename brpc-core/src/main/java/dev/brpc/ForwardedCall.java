package dev.brpc;

import io.grpc.Metadata;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.Optional;

/**
 * A call this server does not implement, as its {@link Director} sees it before it is
 * forwarded.
 *
 * <p>Confined to the call's {@link Director#direct} invocation.
 *
 * @param <C> the server's client stub type
 */
public final class ForwardedCall<C> {
  private final BrpcServer<C> server;
  private final String fullMethodName;
  private final String authority;
  private final Metadata headers;
  private final ConnectedClient<C> caller;
  private final byte[] firstMessage;

  ForwardedCall(BrpcServer<C> server, String fullMethodName, String authority,
      Metadata headers, ConnectedClient<C> caller, byte[] firstMessage) {
    this.server = server;
    this.fullMethodName = fullMethodName;
    this.authority = authority;
    this.headers = headers;
    this.caller = caller;
    this.firstMessage = firstMessage;
  }

  /**
   * The server the call arrived at, for its clients: {@code call.server().client(id)},
   * {@code call.server().clientsWithKey(key)}.
   *
   * @return the server
   */
  public BrpcServer<C> server() {
    return server;
  }

  /**
   * The method called, e.g. {@code "helloworld.Greeter/SayHello"}.
   *
   * @return the full method name
   */
  public String fullMethodName() {
    return fullMethodName;
  }

  /**
   * The service part of {@link #fullMethodName()}, e.g. {@code "helloworld.Greeter"}.
   *
   * @return the full service name
   */
  public String serviceName() {
    int slash = fullMethodName.lastIndexOf('/');
    return slash < 0 ? fullMethodName : fullMethodName.substring(0, slash);
  }

  /**
   * The authority the caller named, or null.
   *
   * @return the call's authority
   */
  public String authority() {
    return authority;
  }

  /**
   * The call's request headers, as they will be forwarded: a director may remove (or add) keys,
   * a routing header for instance, and the target sees the change. The caller's deadline is not
   * among them: it travels with the call.
   *
   * @return the headers to forward
   */
  public Metadata headers() {
    return headers;
  }

  /**
   * The brpc client that made the call, as {@link BrpcServer#callerFromContext()} gives it;
   * empty for a caller that is not one of this server's clients.
   *
   * @return the calling client, if any
   */
  public Optional<ConnectedClient<C>> caller() {
    return Optional.ofNullable(caller);
  }

  /**
   * The call's first request message, serialized, for a director that {@linkplain
   * Director#peeksFirstMessage peeks}: a fresh stream on each call, so reading it consumes
   * nothing ({@code HelloRequest.parseFrom(call.firstMessage().get())}). Empty if the director
   * does not peek at this method or the caller half-closed without sending a message.
   *
   * @return the first request message, if peeked and sent
   */
  public Optional<InputStream> firstMessage() {
    return firstMessage == null
        ? Optional.empty() : Optional.of(new ByteArrayInputStream(firstMessage));
  }
}
