package dev.brpc.quic.engine;

import java.net.InetSocketAddress;

/**
 * One QUIC connection whose TLS handshake is done (see the package documentation).
 *
 * <p>Thread-safe; no method blocks.
 */
public interface EngineConnection {
  /**
   * Starts delivering events to {@code handler}: the peer's streams (those that arrived before
   * are delivered now, in order) and the close. Called once.
   */
  void start(ConnectionHandler handler);

  /**
   * Opens a stream. When the peer's stream credit allows it and no earlier request waits, the
   * stream is opened and {@code callback} runs on the calling thread; otherwise later, in
   * request order, once the peer grants credit (as HTTP/2 queues behind
   * MAX_CONCURRENT_STREAMS). If the connection closes first, {@code callback} fails.
   */
  void openStream(boolean bidirectional, OpenCallback callback);

  /**
   * Closes the connection with an application error code and reason phrase (CONNECTION_CLOSE
   * 0x1d); {@link ConnectionHandler#closed} follows with {@link CloseInfo.Kind#LOCAL}, unless
   * the connection had closed already. Idempotent.
   */
  void close(long applicationErrorCode, String reason);

  InetSocketAddress localAddress();

  /** The peer's address as this side sends to it now. */
  InetSocketAddress remoteAddress();

  /** What the engine measures of the connection now; fields it does not know are -1. */
  ConnectionStats stats();

  /** The engine's internal state, for diagnosing a stuck connection; never on a hot path. */
  String describe();

  /** Receives the result of {@link #openStream}; must not block. */
  interface OpenCallback {
    /**
     * The stream is open. Call {@link EngineStream#start} before writing to it; or give it
     * back unused with {@link EngineStream#reset} and {@link EngineStream#stopSending}.
     */
    void opened(EngineStream stream);

    /** No stream: the connection closed (or failed) first. */
    void failed(java.io.IOException cause);
  }
}
