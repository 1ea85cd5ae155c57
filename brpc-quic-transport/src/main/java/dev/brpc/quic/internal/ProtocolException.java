package dev.brpc.quic.internal;

import java.io.IOException;

/**
 * The peer broke the brpc wire protocol (PROTOCOL.md): a malformed or unexpected frame. On a
 * call stream it becomes {@code INTERNAL} and a stream reset; on the control stream it closes
 * the connection.
 *
 * <p>Immutable; thread-safe.
 */
public final class ProtocolException extends IOException {
  private static final long serialVersionUID = 1L;

  public ProtocolException(String message) {
    super(message);
  }
}
