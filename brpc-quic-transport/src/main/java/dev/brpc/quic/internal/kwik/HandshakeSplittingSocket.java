package dev.brpc.quic.internal.kwik;

import dev.brpc.quic.engine.QuicPackets;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.SocketException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The kwik dialer's UDP socket. It sends a datagram in which kwik put a Handshake packet in
 * front of other packets as two datagrams, so that a server that has discarded its handshake
 * keys still reads the packets behind it ({@link QuicPackets#handshakePacketLength}). Without
 * this, about one fresh connection in eight (14 of 120 on loopback, 2 cores, when it was
 * measured) lost the datagram carrying our SETTINGS, so the connection became ready, and calls
 * started before then were answered, 30-130 ms late, once kwik had sent SETTINGS again.
 *
 * <p>The mechanism, in kwik 0.10.9 (file and line references are to its sources):
 *
 * <ol>
 *   <li>Client: processing the server packet that completes the handshake, the receiver
 *       thread runs the TLS engine, which queues the client's Finished and flushes
 *       ({@code QuicClientConnectionImpl} line 216), then releases {@code connect()} (line
 *       630); only after all frames are processed does it register the packet for
 *       acknowledgement ({@code QuicConnectionImpl.processPacket}, line 401). The sender
 *       thread often sends Finished before that, without the ACK. The Handshake ACK then goes
 *       in the next datagram, and {@code GlobalPacketAssembler.assemble} (line 89) puts it in
 *       front of any 1-RTT packet queued by then: our SETTINGS, written as soon as
 *       {@code connect()} returns. The same happens when the server's handshake flight comes
 *       in two datagrams, and even just after HANDSHAKE_DONE arrived:
 *       {@code SenderImpl.discard} (line 256) stops the Handshake assembler but leaves its
 *       pending ACK, and the keys are discarded only after it returns.
 *   <li>Server: {@code ServerConnectionImpl.handshakeFinished} (lines 291-303) discards the
 *       Handshake keys as soon as it has processed the client's Finished (RFC 9001 section
 *       4.9.2 requires that).
 *   <li>Server: in {@code PacketParser.parseAndProcessPackets} (lines 66-111),
 *       {@code getAead} throws {@code MissingKeysException} (keys discarded: not even logged)
 *       before the packet is parsed; the buffer has not advanced, so the loop stops (line 104)
 *       and the 1-RTT packet behind it is dropped unread. RFC 9000 section 12.2 requires a
 *       receiver to process the remaining packets; the comment in that catch block quotes it.
 *       kwik's master branch still does this.
 *   <li>Client: the dropped 1-RTT packet is sent again only once kwik declares it lost (the
 *       acknowledgement of a later packet shows it missing) or its probe timeout fires (which
 *       for 1-RTT data does not even run before HANDSHAKE_DONE has arrived).
 * </ol>
 *
 * <p>Sending the packets separately is always allowed (coalescing is an optimisation, RFC 9000
 * section 12.2). It costs a bit test per datagram after the handshake (short headers are sent
 * as they are) and during it one more datagram, sent at once. A datagram that starts with an
 * Initial packet is never split: it must be padded to 1200 bytes as a whole. Only a dialer
 * needs this: kwik's server sends no Handshake packet once it has discarded the keys, which
 * it does before its first 1-RTT packet.
 *
 * <p>{@code HandshakeSplittingSocketTest} reproduces the drop on bare kwik;
 * {@code FirstRequestDelayTest} checks the datagrams a channel sends.
 *
 * <p>Thread-safe as {@link DatagramSocket} is; kwik sends from one thread.
 */
public class HandshakeSplittingSocket extends DatagramSocket { // not final: tests extend it
  private static final Logger log = Logger.getLogger(HandshakeSplittingSocket.class.getName());

  /** Set once anything arrived: the server answers (see the connect deadline). */
  volatile boolean heard;

  public HandshakeSplittingSocket() throws SocketException {
    super();
  }

  @Override
  public void receive(DatagramPacket p) throws IOException {
    super.receive(p);
    heard = true;
  }

  @Override
  public void send(DatagramPacket p) throws IOException {
    byte[] data = p.getData();
    int offset = p.getOffset();
    int length = p.getLength();
    int first = QuicPackets.handshakePacketLength(data, offset, length);
    if (first <= 0 || first >= length) {
      super.send(p);
      return;
    }
    log.log(Level.FINER, "sending a Handshake packet of {0} bytes apart from the {1} bytes"
        + " coalesced after it", new Object[] {first, length - first});
    super.send(slice(p, offset, first));
    super.send(slice(p, offset + first, length - first));
  }

  private static DatagramPacket slice(DatagramPacket p, int offset, int length) {
    DatagramPacket d = new DatagramPacket(p.getData(), offset, length);
    if (p.getAddress() != null) {
      d.setSocketAddress(p.getSocketAddress());
    }
    return d;
  }
}
