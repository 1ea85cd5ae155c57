package dev.brpc.tcp;

/**
 * The gRPC call under one tunnel stream or connection, the same for a client call and a server
 * call: grpc's calls are not thread-safe, so every implementation serializes its operations.
 *
 * <p>Thread-safe; no method blocks.
 */
interface Pipe {
  /** Sends one frame (grpc buffers it; callers respect {@link #isReady}). */
  void send(byte[] frame);

  /** Whether grpc's send buffer is below its threshold. */
  boolean isReady();

  /** Asks grpc for {@code n} more frames. */
  void request(int n);

  /** Ends the call normally: a client half-closes, a server closes with OK. Idempotent. */
  void finish();

  /** Ends the call abruptly: a client cancels, a server closes with CANCELLED. Idempotent. */
  void abort(String why);

  /** The stream whose frames this call carries; set before the first request. */
  default void bind(TunnelStream stream) {}
}
