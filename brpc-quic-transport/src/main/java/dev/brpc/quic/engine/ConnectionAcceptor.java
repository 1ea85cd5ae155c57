package dev.brpc.quic.engine;

/** Receives the connections a listener accepts. */
public interface ConnectionAcceptor {
  /**
   * A connection whose TLS handshake is done. Runs on an engine thread; must not block. Call
   * {@link EngineConnection#start} (here or later) or {@link EngineConnection#close}.
   *
   * @param connection the accepted connection
   */
  void accepted(EngineConnection connection);
}
