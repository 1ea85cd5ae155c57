package dev.brpc.quic.engine;

/**
 * The transport's side of one connection. Callbacks may run on engine threads and must never
 * block.
 */
public interface ConnectionHandler {
  /**
   * The peer opened {@code stream} (bidirectional, or unidirectional: then only readable).
   * Call {@link EngineStream#start} (here or later: bytes wait in the engine, under flow
   * control), or refuse it with {@link EngineStream#reset} and {@link EngineStream#stopSending}.
   *
   * @param stream the stream the peer opened
   */
  void peerStreamOpened(EngineStream stream);

  /**
   * The connection is closed, for the reason given; called once. Every stream's {@code read}
   * fails from now on, and its handler hears {@link StreamHandler#readable} once more.
   *
   * @param info why the connection closed
   */
  void closed(CloseInfo info);
}
