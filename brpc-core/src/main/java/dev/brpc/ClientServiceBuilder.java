package dev.brpc;

import io.grpc.Channel;

/**
 * Builds the stub a server uses to call one connected client, from a channel bound to that
 * client's connection. A generated stub factory fits as it is:
 *
 * <pre>{@code
 * BrpcServer<NamerGrpc.NamerBlockingStub> server =
 *     BrpcServer.forPort(8443, NamerGrpc::newBlockingStub).addService(new GreeterImpl()).build();
 * }</pre>
 *
 * <p>The Java form of {@code ClientServiceBuilder} in Go's {@code github.com/clarkmcc/brpc}. It is
 * called once per connected client, on a transport thread, so it must be quick and must not
 * block; {@code NamerGrpc::newStub} and {@code ::newFutureStub} fit as well.
 *
 * @param <C> the stub type handlers get from {@link BrpcServer#clientFromContext()}
 */
@FunctionalInterface
public interface ClientServiceBuilder<C> {
  /**
   * Returns the stub for the client behind {@code channel}.
   *
   * @param channel a channel bound to the client's connection
   * @return the stub that calls the client
   */
  C build(Channel channel);
}
