package dev.brpc.quic.engine;

import java.io.IOException;

/** A stream cannot be read or written any more, and why. */
public final class StreamException extends IOException {
  private static final long serialVersionUID = 1L;

  /** Why. */
  public enum Kind {
    /** The peer reset its sending side (RESET_STREAM), or stopped ours (STOP_SENDING). */
    RESET,
    /** This side stopped reading or reset the stream. */
    LOCAL,
    /** The connection closed. */
    CONNECTION_CLOSED
  }

  private final Kind kind;
  private final long code;

  /**
   * @param code the application error code the peer sent, or -1 where the engine does not
   *     tell it (kwik 0.10.9 never does) or there is none
   */
  public StreamException(Kind kind, long code, String message) {
    super(message);
    this.kind = kind;
    this.code = code;
  }

  public StreamException(Kind kind, long code, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
    this.code = code;
  }

  public Kind kind() {
    return kind;
  }

  /** The peer's application error code, or -1 if not known. */
  public long code() {
    return code;
  }
}
