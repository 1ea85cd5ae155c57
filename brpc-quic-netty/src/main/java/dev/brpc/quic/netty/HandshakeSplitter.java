package dev.brpc.quic.netty;

import dev.brpc.quic.engine.QuicPackets;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.DatagramPacket;

/**
 * Sends a datagram that starts with a Handshake packet followed by more packets as two
 * datagrams, so that a kwik server, which drops the whole datagram once it has discarded its
 * handshake keys, still reads the 1-RTT packets behind it ({@link
 * QuicPackets#handshakePacketLength}; PROTOCOL.md section 1). On the dialers' UDP channels,
 * below the QUIC codec.
 *
 * <p>Not sharable: one per channel, on its event loop.
 */
final class HandshakeSplitter extends ChannelOutboundHandlerAdapter {
  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
    if (!(msg instanceof DatagramPacket)) {
      ctx.write(msg, promise);
      return;
    }
    DatagramPacket packet = (DatagramPacket) msg;
    ByteBuf content = packet.content();
    int length = content.readableBytes();
    if (length == 0 || (content.getByte(content.readerIndex()) & 0xc0) != 0xc0) {
      ctx.write(msg, promise); // a short header: every datagram after the handshake
      return;
    }
    // A long header: only during the handshake, a few datagrams per connection.
    byte[] data = new byte[length];
    content.getBytes(content.readerIndex(), data);
    int first = QuicPackets.handshakePacketLength(data, 0, length);
    if (first <= 0 || first >= length) {
      ctx.write(msg, promise);
      return;
    }
    ByteBuf head = content.retainedSlice(content.readerIndex(), first);
    ByteBuf rest = content.retainedSlice(content.readerIndex() + first, length - first);
    packet.release();
    ctx.write(new DatagramPacket(head, packet.recipient(), packet.sender()), ctx.voidPromise());
    ctx.write(new DatagramPacket(rest, packet.recipient(), packet.sender()), promise);
  }
}
