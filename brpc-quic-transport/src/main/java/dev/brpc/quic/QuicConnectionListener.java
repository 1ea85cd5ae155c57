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
  /**
   * The connection is set up and calls can go both ways. On a server this runs once the client
   * is admitted and before the client is told so: whatever the listener registers is in place
   * when the client's first call arrives. On a channel it runs once the server's SETTINGS are in.
   *
   * @param connection the new connection
   */
  default void connected(PeerConnection connection) {}

  /**
   * The connection is gone; {@code status} says why (OK-like closes are UNAVAILABLE).
   *
   * @param connection the connection that closed
   * @param status why it closed
   */
  default void disconnected(PeerConnection connection, Status status) {}

  /**
   * Channels only: a connection attempt failed before {@link #connected}, for example because
   * the server is unreachable, its certificate is not trusted, or its {@link ConnectHandler}
   * refused the client ({@code status} then carries the handler's code and description). The
   * channel retries with backoff, as grpc channels do.
   *
   * @param server the address the channel tried to reach
   * @param status why the attempt failed
   */
  default void connectFailed(java.net.SocketAddress server, Status status) {}
}
