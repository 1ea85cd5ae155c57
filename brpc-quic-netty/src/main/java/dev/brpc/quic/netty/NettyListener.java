package dev.brpc.quic.netty;

import dev.brpc.quic.engine.ConnectionAcceptor;
import dev.brpc.quic.engine.EngineListener;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.handler.codec.quic.QuicChannel;
import java.net.InetSocketAddress;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One listening UDP channel with Netty's QUIC server codec. All its connections and streams
 * run on the channel's one event-loop thread.
 *
 * <p>Thread-safe.
 */
final class NettyListener implements EngineListener {
  private static final Logger log = Logger.getLogger(NettyListener.class.getName());
  private static final long CLOSE_WAIT_MILLIS = 2000;

  private final ConnectionAcceptor acceptor;
  private final Set<QuicChannel> connections = ConcurrentHashMap.newKeySet();
  private volatile Channel udp;
  private volatile boolean refusing;

  NettyListener(ConnectionAcceptor acceptor) {
    this.acceptor = acceptor;
  }

  void bound(Channel udp) {
    this.udp = udp;
  }

  /**
   * Netty made a QUIC channel for a new peer, before its handshake; on the event loop. While
   * refusing, it is closed with CONNECTION_REFUSED at once (RFC 9000, section 20.1).
   */
  void created(QuicChannel channel) {
    if (refusing) {
      // After the codec has fed the channel the packet that made it: closed before, quiche
      // would have no keys to send the CONNECTION_CLOSE with, and the dialer would retransmit
      // until its handshake timeout.
      channel.eventLoop().execute(() -> channel.close(false, NettyConnection.CONNECTION_REFUSED,
          Unpooled.wrappedBuffer("the server is not accepting connections".getBytes(
              java.nio.charset.StandardCharsets.UTF_8))));
      return;
    }
    connections.add(channel);
    channel.closeFuture().addListener(f -> connections.remove(channel));
    NettyConnection c = NettyConnection.of(channel);
    c.onActive(() -> acceptor.accepted(c));
  }

  @Override
  public InetSocketAddress localAddress() {
    return (InetSocketAddress) udp.localAddress();
  }

  @Override
  public void stopAccepting() {
    refusing = true;
  }

  @Override
  public void close() {
    refusing = true;
    for (QuicChannel c : connections) {
      c.close(true, 0, Unpooled.EMPTY_BUFFER);
    }
    // The close frames leave through the UDP channel, on its event loop, before it closes.
    Channel u = udp;
    u.eventLoop().execute(() -> u.close());
    if (!u.closeFuture().awaitUninterruptibly(CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS)) {
      log.log(Level.WARNING, "{0}: the UDP channel did not close within {1} ms",
          new Object[] {u, CLOSE_WAIT_MILLIS});
    }
  }
}
