package dev.brpc.quic.engine;

import java.net.InetSocketAddress;

/**
 * A listening socket of an engine.
 *
 * <p>Thread-safe.
 */
public interface EngineListener {
  /**
   * The bound address (the real port when 0 was asked for).
   *
   * @return the local socket address
   */
  InetSocketAddress localAddress();

  /**
   * New connections are refused from now on (QUIC CONNECTION_REFUSED, at once); accepted ones
   * go on. Never blocks.
   */
  void stopAccepting();

  /**
   * Releases the socket once the engine is done with it; the port is free when this returns.
   * Connections still open are dropped. May block for a bounded time; call it from a thread
   * that may block.
   */
  void close();
}
