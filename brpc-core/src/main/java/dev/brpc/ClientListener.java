package dev.brpc;

import io.grpc.Status;

/**
 * Hears clients connect to and disconnect from a {@link BrpcServer}.
 *
 * <p>Runs on a transport thread: return quickly, and start calls to the client asynchronously
 * (a blocking call from {@link #connected} would hold up the client's admission). A client is
 * in {@link BrpcServer#clients()} before {@code connected} runs and out of it before
 * {@code disconnected} runs.
 *
 * <pre>{@code
 * builder.addListener(new ClientListener<NamerGrpc.NamerStub>() {
 *   public void connected(ConnectedClient<NamerGrpc.NamerStub> client) {
 *     log.info(client + " connected"); // client.stub().name(...) would be asynchronous here
 *   }
 *
 *   public void disconnected(ConnectedClient<NamerGrpc.NamerStub> client, Status status) {
 *     log.info(client + " left: " + status);
 *   }
 * });
 * }</pre>
 *
 * @param <C> the server's client stub type
 */
public interface ClientListener<C> {
  /**
   * {@code client} connected; its first call has not arrived yet.
   *
   * @param client the client that connected
   */
  default void connected(ConnectedClient<C> client) {}

  /**
   * {@code client} is gone; {@code status} says why. Its calls in flight have failed.
   *
   * @param client the client that disconnected
   * @param status why it disconnected
   */
  default void disconnected(ConnectedClient<C> client, Status status) {}
}
