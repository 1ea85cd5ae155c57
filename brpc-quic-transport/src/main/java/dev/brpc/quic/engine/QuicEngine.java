package dev.brpc.quic.engine;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;

/**
 * A QUIC implementation under brpc's gRPC transport (see the package documentation).
 *
 * <p>Thread-safe.
 */
public interface QuicEngine {
  /** A short name users pick the engine by, e.g. {@code "kwik"}. */
  String name();

  /**
   * Starts accepting connections on {@code spec.address()}. Each connection whose handshake
   * completes is handed to {@code acceptor}, on an engine thread.
   */
  EngineListener listen(ListenSpec spec, ConnectionAcceptor acceptor) throws IOException;

  /**
   * Dials {@code spec.target()}. The future completes with the connection once its TLS
   * handshake is done, or exceptionally with a {@link DialException}. Cancelling the future
   * abandons the attempt (a connection that completes anyway is closed). Never blocks.
   */
  CompletableFuture<EngineConnection> dial(DialSpec spec);
}
