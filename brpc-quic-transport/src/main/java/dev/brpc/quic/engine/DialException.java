package dev.brpc.quic.engine;

import java.io.IOException;

/** A dial that did not produce a connection, and why. */
public final class DialException extends IOException {
  private static final long serialVersionUID = 1L;

  /** Why, as far as the engine can tell. */
  public enum Reason {
    /** Nothing came back within the connect timeout. */
    NO_ANSWER,
    /** The OS says nothing listens there (ICMP port unreachable). */
    REFUSED_BY_NETWORK,
    /** The server answered, but the handshake did not finish within the handshake timeout. */
    HANDSHAKE_TIMEOUT,
    /** TLS failed: the certificate, the host name, ALPN, or an alert from the peer. */
    TLS,
    /** The server closed the connection during the handshake (with {@link #closeInfo()}). */
    CLOSED_BY_PEER,
    /** Anything else (the cause says). */
    OTHER
  }

  private final Reason reason;
  private final CloseInfo closeInfo;

  public DialException(Reason reason, String message, Throwable cause) {
    this(reason, message, cause, null);
  }

  public DialException(Reason reason, String message, Throwable cause, CloseInfo closeInfo) {
    super(message, cause);
    this.reason = reason;
    this.closeInfo = closeInfo;
  }

  public Reason reason() {
    return reason;
  }

  /** How the peer closed the attempt, for {@link Reason#CLOSED_BY_PEER}; else null. */
  public CloseInfo closeInfo() {
    return closeInfo;
  }
}
