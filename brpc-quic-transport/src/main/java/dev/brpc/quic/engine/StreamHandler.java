package dev.brpc.quic.engine;

import java.io.IOException;

/**
 * The transport's side of one stream. Callbacks may run on any thread, concurrently with each
 * other and with the handler's own calls into the stream, and must never block.
 */
public interface StreamHandler {
  /** Something arrived: bytes, the FIN, a reset, or the connection's end. Call read. */
  void readable();

  /** The stream takes bytes again, after {@link EngineStream#requestWritable} returned false. */
  void writable();

  /**
   * A write the engine had taken failed later (the peer stopped the stream, say).
   *
   * @param cause why the write failed
   */
  default void writeFailed(IOException cause) {}
}
