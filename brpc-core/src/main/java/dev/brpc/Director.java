package dev.brpc;

import io.grpc.StatusException;

/**
 * Picks where a call goes when this server does not implement its service: a connected client
 * (an agent behind NAT serving the method), or any other channel. The call is then forwarded as
 * it came, without decoding its messages: all four call types, metadata both ways, the caller's
 * deadline and cancellation, flow control end to end (a slow client slows the caller; each side
 * holds at most a message or so), and the client's status and trailers returned unchanged. Set it
 * with {@link BrpcServer.Builder#director}.
 *
 * <pre>{@code
 * Metadata.Key<String> AGENT = Metadata.Key.of("agent-id", Metadata.ASCII_STRING_MARSHALLER);
 * BrpcServer.forPort(8443, NamerGrpc::newBlockingStub)
 *     .director(call -> {
 *       String id = call.headers().get(AGENT);
 *       if (id == null) {
 *         return null; // not ours to forward: UNIMPLEMENTED, as for any unknown method
 *       }
 *       ConnectedClient<NamerGrpc.NamerBlockingStub> agent = call.server()
 *           .client(UUID.fromString(id))
 *           .orElseThrow(() -> Status.NOT_FOUND.withDescription("no agent " + id).asException());
 *       return Route.to(agent);
 *     })
 * }</pre>
 *
 * <p>A director that routes by the request itself says so with {@link #peeksFirstMessage}; its
 * {@link #direct} then runs once the first request message has arrived, which it reads from
 * {@link ForwardedCall#firstMessage()} without consuming it.
 *
 * <p>Runs on the forwarded call's executor (the server's handler executor), once per call, in
 * the call's {@link io.grpc.Context}: it may block briefly (a lookup), as a handler may. Must be
 * thread-safe: calls are directed concurrently.
 *
 * @param <C> the server's client stub type
 */
@FunctionalInterface
public interface Director<C> {
  /**
   * Where {@code call} goes.
   *
   * @param call the call to forward: its method, headers, caller and (if peeked) first message
   * @return the route, or null to refuse the call as an unknown method (UNIMPLEMENTED)
   * @throws StatusException to refuse the call with this status (and its trailers)
   */
  Route direct(ForwardedCall<C> call) throws StatusException;

  /**
   * Whether {@link #direct} needs the first request message of calls to this method. If true,
   * the call is not forwarded before its first message arrives (or the caller half-closes
   * without one); default false.
   *
   * @param fullMethodName the method, e.g. {@code "helloworld.Greeter/SayHello"}
   * @return true to receive the first request message before directing the call
   */
  default boolean peeksFirstMessage(String fullMethodName) {
    return false;
  }
}
