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
    /** The server answered with a Version Negotiation packet: no QUIC version in common. */
    VERSION_MISMATCH,
    /** TLS failed: the certificate, the host name, ALPN, or an alert from the peer. */
    TLS,
    /** The server closed the connection during the handshake (with {@link #closeInfo()}). */
    CLOSED_BY_PEER,
    /** Anything else (the cause says). */
    OTHER
  }

  /** Why the dial failed. */
  private final Reason reason;
  /** How the peer closed the attempt, or null. */
  private final CloseInfo closeInfo;

  /**
   * A dial failure without a {@link CloseInfo}.
   *
   * @param reason why the dial failed
   * @param message the detail message
   * @param cause the underlying failure, or null
   */
  public DialException(Reason reason, String message, Throwable cause) {
    this(reason, message, cause, null);
  }

  /**
   * A dial failure, with how the peer closed the attempt if it did.
   *
   * @param reason why the dial failed
   * @param message the detail message
   * @param cause the underlying failure, or null
   * @param closeInfo how the peer closed the attempt, or null
   */
  public DialException(Reason reason, String message, Throwable cause, CloseInfo closeInfo) {
    super(message, cause);
    this.reason = reason;
    this.closeInfo = closeInfo;
  }

  /**
   * Why the dial failed, as far as the engine can tell.
   *
   * @return the failure's reason
   */
  public Reason reason() {
    return reason;
  }

  /**
   * How the peer closed the attempt, for {@link Reason#CLOSED_BY_PEER}; else null.
   *
   * @return the peer's close, or null
   */
  public CloseInfo closeInfo() {
    return closeInfo;
  }

  /**
   * The server answered with a Version Negotiation packet listing {@code serverVersions}, none
   * of them the one this client sent (QUIC v1).
   *
   * @param serverVersions the versions the server listed; null if the engine does not say
   * @param cause the underlying failure, or null
   * @return the failure, in words
   */
  public static DialException versionMismatch(int[] serverVersions, Throwable cause) {
    StringBuilder listed = new StringBuilder();
    for (int v : serverVersions == null ? new int[0] : serverVersions) {
      listed.append(listed.length() == 0 ? "" : ", ").append(QuicPackets.versionName(v));
    }
    return new DialException(Reason.VERSION_MISMATCH, "QUIC version mismatch: the server speaks "
        + (listed.length() == 0 ? "other versions" : listed) + ", this client v1; it is not a"
        + " brpc server, or a QUIC stack of another version", cause);
  }

  /**
   * The server answered, but the handshake did not finish within {@code millis}.
   *
   * @param millis the handshake timeout, in milliseconds
   * @param cause the underlying failure, or null
   * @return the failure, in words
   */
  public static DialException handshakeTimeout(long millis, Throwable cause) {
    return new DialException(Reason.HANDSHAKE_TIMEOUT, "the handshake did not finish within "
        + millis + " ms: the server answered, but its handshake did not get through (a busy"
        + " server, a path that drops large UDP datagrams, or not a QUIC server?)", cause);
  }
}
