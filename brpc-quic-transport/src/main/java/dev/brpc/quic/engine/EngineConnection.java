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
   *
   * @param handler receives the connection's events
   */
  void start(ConnectionHandler handler);

  /**
   * Opens a stream. When the peer's stream credit allows it and no earlier request waits, the
   * stream is opened and {@code callback} runs on the calling thread; otherwise later, in
   * request order, once the peer grants credit (as HTTP/2 queues behind
   * MAX_CONCURRENT_STREAMS). If the connection closes first, {@code callback} fails.
   *
   * @param bidirectional true for a bidirectional stream, false for a unidirectional one
   * @param callback told when the stream is open, or that it could not be
   */
  void openStream(boolean bidirectional, OpenCallback callback);

  /**
   * Closes the connection with an application error code and reason phrase (CONNECTION_CLOSE
   * 0x1d); {@link ConnectionHandler#closed} follows with {@link CloseInfo.Kind#LOCAL}, unless
   * the connection had closed already. Idempotent.
   *
   * @param applicationErrorCode the application error code sent to the peer
   * @param reason the reason phrase sent to the peer
   */
  void close(long applicationErrorCode, String reason);

  /**
   * The local address the connection uses.
   *
   * @return the local socket address
   */
  InetSocketAddress localAddress();

  /**
   * The peer's address as this side sends to it now.
   *
   * @return the remote socket address
   */
  InetSocketAddress remoteAddress();

  /**
   * What the engine measures of the connection now; fields it does not know are -1.
   *
   * @return a snapshot of the connection's statistics
   */
  ConnectionStats stats();

  /**
   * The engine's internal state, for diagnosing a stuck connection; never on a hot path.
   *
   * @return a human-readable description of the engine's state
   */
  String describe();

  /** Receives the result of {@link #openStream}; must not block. */
  interface OpenCallback {
    /**
     * The stream is open. Call {@link EngineStream#start} before writing to it; or give it
     * back unused with {@link EngineStream#reset} and {@link EngineStream#stopSending}.
     *
     * @param stream the new stream
     */
    void opened(EngineStream stream);

    /**
     * No stream: the connection closed (or failed) first.
     *
     * @param cause why no stream was opened
     */
    void failed(java.io.IOException cause);
  }
}
