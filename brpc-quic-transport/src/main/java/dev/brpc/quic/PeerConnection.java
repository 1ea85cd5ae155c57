package dev.brpc.quic;

import io.grpc.Attributes;
import io.grpc.Channel;
import io.grpc.Metadata;
import java.net.SocketAddress;

/**
 * One established brpc QUIC connection, seen from either end. On the server it is how the
 * server calls back into the client that dialed it: {@link #channel()} opens calls toward the
 * peer over this very connection.
 *
 * <pre>{@code
 * QuicServerBuilder.forPort(8443)
 *     .connectionListener(new QuicConnectionListener() {
 *       public void connected(PeerConnection client) {
 *         NamerGrpc.NamerBlockingStub namer = NamerGrpc.newBlockingStub(client.channel());
 *         ...
 *       }
 *     })
 * }</pre>
 *
 * <p>Thread-safe.
 */
public interface PeerConnection {
  /**
   * This process's id for the connection; the same as {@link QuicAttributes#CONNECTION_ID}.
   *
   * @return the connection's id
   */
  String id();

  /**
   * The peer's address.
   *
   * @return the remote socket address
   */
  SocketAddress remoteAddress();

  /**
   * What the peer sent in its SETTINGS (see {@link QuicAttributes#PEER_METADATA}).
   *
   * @return the peer's connect metadata
   */
  Metadata peerMetadata();

  /**
   * The transport attributes calls on this connection carry.
   *
   * @return the connection's transport attributes
   */
  Attributes attributes();

  /**
   * A channel whose calls go to the peer over this connection. Calls fail with UNAVAILABLE
   * once the connection is gone, and the peer answers UNIMPLEMENTED if it serves nothing.
   *
   * @return a channel to the peer
   */
  Channel channel();

  /**
   * What is known of the connection now: its engine, round-trip time, bytes and packets, open
   * calls. Cheap on kwik; on the native engine it waits (at most a second) for the event loop
   * to collect the figures, so call it from diagnostics, not per call.
   *
   * @return a snapshot of the connection
   */
  ConnectionInfo info();

  /**
   * Whether the connection is still up.
   *
   * @return true until the connection closes
   */
  boolean isOpen();
}
