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

  public CloseInfo {
    reason = reason == null ? "" : reason;
  }

  /** Whether the peer ended the connection. */
  public boolean byPeer() {
    return kind == Kind.PEER_APPLICATION || kind == Kind.PEER_TRANSPORT;
  }
}
