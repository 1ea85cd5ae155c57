package dev.brpc.quic.engine;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;

/**
 * A QUIC implementation under brpc's gRPC transport (see the package documentation).
 *
 * <p>Thread-safe.
 */
public interface QuicEngine {
  /**
   * A short name users pick the engine by, e.g. {@code "kwik"}.
   *
   * @return the engine's name
   */
  String name();

  /**
   * Starts accepting connections on {@code spec.address()}. Each connection whose handshake
   * completes is handed to {@code acceptor}, on an engine thread.
   *
   * @param spec where to listen and how
   * @param acceptor receives the accepted connections
   * @return the listener, bound to its address
   * @throws IOException if the socket cannot be bound
   */
  EngineListener listen(ListenSpec spec, ConnectionAcceptor acceptor) throws IOException;

  /**
   * Dials {@code spec.target()}. The future completes with the connection once its TLS
   * handshake is done, or exceptionally with a {@link DialException}. Cancelling the future
   * abandons the attempt (a connection that completes anyway is closed). Never blocks.
   *
   * @param spec where to dial and how
   * @return a future of the connection
   */
  CompletableFuture<EngineConnection> dial(DialSpec spec);
}
