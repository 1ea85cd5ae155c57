package dev.brpc.quic;

import io.grpc.Status;

/**
 * Learns when brpc QUIC connections come and go. Register it on {@link QuicServerBuilder} (one
 * event pair per accepted client) or {@link QuicChannelBuilder} (one pair per connection the
 * channel dials, including reconnections).
 *
 * <p>Callbacks run on a transport thread: return quickly and never block on a call.
 */
public interface QuicConnectionListener {
  /** The connection is set up (SETTINGS exchanged): calls can go both ways. */
  default void connected(PeerConnection connection) {}

  /** The connection is gone; {@code status} says why (OK-like closes are UNAVAILABLE). */
  default void disconnected(PeerConnection connection, Status status) {}
}
