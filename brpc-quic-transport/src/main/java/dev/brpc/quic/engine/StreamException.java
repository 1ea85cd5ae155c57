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

  /** Why the stream failed. */
  private final Kind kind;
  /** The peer's application error code, or -1. */
  private final long code;

  /**
   * A stream failure.
   *
   * @param kind why the stream failed
   * @param code the application error code the peer sent, or -1 where the engine does not
   *     tell it (kwik 0.10.9 never does) or there is none
   * @param message the detail message
   */
  public StreamException(Kind kind, long code, String message) {
    super(message);
    this.kind = kind;
    this.code = code;
  }

  /**
   * A stream failure with the exception that caused it.
   *
   * @param kind why the stream failed
   * @param code the application error code the peer sent, or -1 if not known or none
   * @param message the detail message
   * @param cause the underlying failure
   */
  public StreamException(Kind kind, long code, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
    this.code = code;
  }

  /**
   * Why the stream cannot be used any more.
   *
   * @return the failure's kind
   */
  public Kind kind() {
    return kind;
  }

  /**
   * The peer's application error code, or -1 if not known.
   *
   * @return the application error code, or -1
   */
  public long code() {
    return code;
  }
}
