package dev.brpc.quic.internal;

import io.grpc.Status;

/**
 * Constants of the brpc wire protocol, version 1. PROTOCOL.md at the repository root is the
 * specification; every number here appears there.
 *
 * <p>Stateless; thread-safe.
 */
final class Wire {
  private Wire() {}

  /** ALPN protocol id; a peer that speaks another version fails the QUIC handshake. */
  static final String ALPN = "brpc/1";

  // Frame types on a call stream (PROTOCOL.md, "Call streams").
  static final int FRAME_DATA = 0x00;
  static final int FRAME_HEADERS = 0x01;
  static final int FRAME_TRAILERS = 0x02;
  // 0x03 was HALF_CLOSE in drafts of version 1; the caller's FIN is the half-close.
  /**
   * First frame of a side channel (PROTOCOL.md section 7): a bidirectional stream that carries
   * raw bytes beside the call it names. The acceptor answers with an empty one.
   */
  static final int FRAME_SIDE_CHANNEL = 0x05;

  // Frame types on a control stream (PROTOCOL.md, "Control streams").
  static final int FRAME_SETTINGS = 0x04;
  static final int FRAME_PING = 0x06;
  static final int FRAME_GOAWAY = 0x07;
  /**
   * The caller cancels a call whose request it has already finished (FIN): a reset of its
   * send side would be ignored by QUIC, so it names the stream on the control stream.
   */
  static final int FRAME_CANCEL = 0x08;

  /** PING flag: this PING answers one received. */
  static final int PING_FLAG_ACK = 0x01;
  /** PING payload: one flags byte and eight opaque bytes. */
  static final int PING_PAYLOAD_SIZE = 9;

  /** SETTINGS id: the largest header block (in bytes) the sender accepts. */
  static final int SETTING_MAX_METADATA_SIZE = 0x01;

  /** The largest control frame payload a peer may send (SETTINGS carries connect metadata). */
  static final int MAX_CONTROL_FRAME_SIZE = 64 * 1024;

  /** Request pseudo-header with the full method name, {@code /package.Service/Method}. */
  static final String PATH = ":path";
  /** Request pseudo-header with the call's authority. */
  static final String AUTHORITY = ":authority";

  // Application error codes, for RESET_STREAM, STOP_SENDING and CONNECTION_CLOSE
  // (PROTOCOL.md, "Error codes").
  /** Nothing is wrong: the stream or connection is simply no longer needed. */
  static final long NO_ERROR = 0x00;
  /** The peer broke this protocol; maps to INTERNAL. */
  static final long PROTOCOL_ERROR = 0x01;
  /** The stream was not processed at all, so the call may be retried elsewhere. */
  static final long REFUSED_STREAM = 0x02;
  /** Codes {@code STATUS_BASE + c} carry gRPC status code {@code c}. */
  static final long STATUS_BASE = 0x100;

  /** The application error code that carries {@code status}. */
  static long errorCode(Status status) {
    return status.isOk() ? NO_ERROR : STATUS_BASE + status.getCode().value();
  }

  /**
   * The status a reset or connection close with {@code code} means to the side that receives
   * it. {@code what} names the event for the description, e.g. "stream reset by peer".
   */
  static Status statusForErrorCode(long code, String what) {
    if (code >= STATUS_BASE && code <= STATUS_BASE + Status.Code.UNAUTHENTICATED.value()) {
      return Status.fromCodeValue((int) (code - STATUS_BASE)).withDescription(what);
    }
    if (code == NO_ERROR) {
      return Status.UNAVAILABLE.withDescription(what + " (no error)");
    }
    if (code == REFUSED_STREAM) {
      return Status.UNAVAILABLE.withDescription(what + ": stream refused, not processed");
    }
    if (code == PROTOCOL_ERROR) {
      return Status.INTERNAL.withDescription(what + ": protocol error");
    }
    return Status.INTERNAL.withDescription(what + ": unknown error code 0x" + Long.toHexString(code));
  }
}
