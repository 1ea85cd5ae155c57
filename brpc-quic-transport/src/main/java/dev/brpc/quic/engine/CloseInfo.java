package dev.brpc.quic.engine;

/**
 * Why a connection closed.
 *
 * @param kind who or what closed it
 * @param code the application error code ({@link Kind#LOCAL}, {@link Kind#PEER_APPLICATION})
 *     or the QUIC transport error code ({@link Kind#PEER_TRANSPORT}, and {@link Kind#INTERNAL}
 *     when the engine knows one); otherwise -1
 * @param reason the reason phrase the peer sent, or the engine's own words; never null
 */
public record CloseInfo(Kind kind, long code, String reason) {
  /** The kinds of ending. */
  public enum Kind {
    /** This side closed it ({@link EngineConnection#close}). */
    LOCAL,
    /** The peer closed it with an application error code (CONNECTION_CLOSE 0x1d). */
    PEER_APPLICATION,
    /** The peer closed it with a transport error code (CONNECTION_CLOSE 0x1c). */
    PEER_TRANSPORT,
    /** No packet arrived for the idle timeout. */
    IDLE_TIMEOUT,
    /** The peer is gone in another way: a stateless reset, a network error. */
    LOST,
    /** The engine failed inside, or found a protocol violation of its own. */
    INTERNAL
  }

  /**
   * Reads a null {@code reason} as the empty string.
   *
   * @param kind who or what closed it
   * @param code the application or transport error code, or -1
   * @param reason the reason phrase, or null for none
   */
  public CloseInfo {
    reason = reason == null ? "" : reason;
  }

  /**
   * Whether the peer ended the connection.
   *
   * @return true if the peer closed it, with an application or a transport error code
   */
  public boolean byPeer() {
    return kind == Kind.PEER_APPLICATION || kind == Kind.PEER_TRANSPORT;
  }

  /** QUIC's transport error names (RFC 9000, section 20.1), by code. */
  private static final String[] TRANSPORT_ERRORS = {"NO_ERROR", "INTERNAL_ERROR",
      "CONNECTION_REFUSED", "FLOW_CONTROL_ERROR", "STREAM_LIMIT_ERROR", "STREAM_STATE_ERROR",
      "FINAL_SIZE_ERROR", "FRAME_ENCODING_ERROR", "TRANSPORT_PARAMETER_ERROR",
      "CONNECTION_ID_LIMIT_ERROR", "PROTOCOL_VIOLATION", "INVALID_TOKEN", "APPLICATION_ERROR",
      "CRYPTO_BUFFER_EXCEEDED", "KEY_UPDATE_ERROR", "AEAD_LIMIT_REACHED", "NO_VIABLE_PATH"};

  /**
   * The peer's transport error in words: its name, or for a TLS alert (codes 0x100 to 0x1ff,
   * RFC 9001 section 4.8) the alert's name; null for an unknown code.
   *
   * @param code a QUIC transport error code
   * @return the error's name, or null if the code is unknown
   */
  public static String transportErrorName(long code) {
    if (code >= 0 && code < TRANSPORT_ERRORS.length) {
      return TRANSPORT_ERRORS[(int) code];
    }
    if (code >= 0x100 && code <= 0x1ff) {
      return "TLS alert " + tlsAlertName((int) (code - 0x100));
    }
    return null;
  }

  /**
   * A TLS alert's name (RFC 8446, section 6), or its number.
   *
   * @param alert the TLS alert number
   * @return the alert's name, or the number as a string if unknown
   */
  public static String tlsAlertName(int alert) {
    return switch (alert) {
      case 10 -> "unexpected_message";
      case 20 -> "bad_record_mac";
      case 40 -> "handshake_failure";
      case 42 -> "bad_certificate";
      case 43 -> "unsupported_certificate";
      case 44 -> "certificate_revoked";
      case 45 -> "certificate_expired";
      case 46 -> "certificate_unknown";
      case 47 -> "illegal_parameter";
      case 48 -> "unknown_ca";
      case 49 -> "access_denied";
      case 50 -> "decode_error";
      case 51 -> "decrypt_error";
      case 70 -> "protocol_version";
      case 71 -> "insufficient_security";
      case 80 -> "internal_error";
      case 109 -> "missing_extension";
      case 110 -> "unsupported_extension";
      case 112 -> "unrecognized_name";
      case 116 -> "certificate_required";
      case 120 -> "no_application_protocol";
      default -> String.valueOf(alert);
    };
  }

  /**
   * Why a peer ended a handshake, for people: a refusal says so, a TLS alert is named (with
   * what no_application_protocol means), the peer's reason phrase is quoted when it sent one.
   *
   * @return a sentence fragment saying how the handshake ended
   */
  public String describeHandshakeClose() {
    String phrase = reason.isEmpty() ? "" : " (\"" + reason + "\")";
    if (kind == Kind.PEER_TRANSPORT && code == 2) {
      return "the server refused the connection: it is shutting down or not accepting"
          + " connections" + phrase;
    }
    if (kind == Kind.PEER_TRANSPORT && code == 0x100 + 120) {
      return "the server does not speak this protocol (TLS alert no_application_protocol: no"
          + " common ALPN; is it a brpc server of the same protocol version?)" + phrase;
    }
    if (kind == Kind.PEER_TRANSPORT) {
      String name = transportErrorName(code);
      return "the server ended the handshake with " + (name != null ? name
          : "transport error " + code) + phrase;
    }
    if (kind == Kind.PEER_APPLICATION) {
      return "the server closed the connection with application error " + code + phrase;
    }
    return "the connection closed during the handshake" + phrase;
  }
}
