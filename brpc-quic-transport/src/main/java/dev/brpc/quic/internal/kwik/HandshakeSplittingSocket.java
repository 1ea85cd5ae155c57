package dev.brpc.quic.internal.kwik;

import dev.brpc.quic.engine.QuicPackets;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.PortUnreachableException;
import java.net.SocketException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The kwik dialer's UDP socket. It holds the first datagram back until kwik is ready for it
 * ({@link #receive}), and it sends a datagram in which kwik put a Handshake packet in
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
 * <p>A dialer connects it to the server, so that the OS's ICMP port unreachable reaches it
 * ({@link #refused}): a dial to a port where nothing listens fails at once, not at the connect
 * timeout. It also drops, as RFC 9000 requires, long-header datagrams whose connection id lengths
 * are invalid ({@link QuicPackets#hasInvalidConnectionIdLength}): a forged Retry like that
 * would abort a kwik 0.10.9 dial (RELIABILITY.md, "kwik's fixes after 0.10.9").
 *
 * <p>Thread-safe as {@link DatagramSocket} is; kwik sends from one thread.
 */
public class HandshakeSplittingSocket extends DatagramSocket { // not final: tests extend it
  private static final Logger log = Logger.getLogger(HandshakeSplittingSocket.class.getName());

  /** How long the first datagram may wait for the dialing thread (see {@link #receive}). */
  private static final long DIALER_WAIT_MILLIS = 200;
  private static final long DIALER_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(DIALER_WAIT_MILLIS);
  private static final long DIALER_POLL_NANOS = TimeUnit.MICROSECONDS.toNanos(20);

  /** Set once anything arrived: the server answers (see the connect deadline). */
  volatile boolean heard;
  /**
   * UDP payload bytes received: kwik counts nothing it receives, and a dialer's socket carries
   * one connection only. Written by kwik's one receiver thread.
   */
  private volatile long bytesReceived;
  /**
   * Set when the OS reported ICMP port unreachable for the server's address: nothing listens
   * there. Only a connected socket sees it ({@code KwikEngine} connects it to the server).
   */
  volatile boolean refused;
  private volatile Runnable onRefused = () -> { };
  /** The QUIC version of the last long-header packet kwik sent (its Initial's). */
  private volatile int sentVersion;
  /**
   * The versions a Version Negotiation packet from the server listed, none of them the one
   * kwik sent; null if none came. The dial then fails at once (see {@link #onRefused}).
   */
  volatile int[] serverVersions;
  /** The thread that builds the connection and then calls {@code connect()}. */
  private final Thread dialer = Thread.currentThread();
  private volatile boolean dialerParked;

  /** Call on the thread that then calls kwik's {@code connect()} (from the socket factory). */
  public HandshakeSplittingSocket() throws SocketException {
    super();
  }

  /**
   * Hands kwik's receiver the first datagram only once the dialing thread waits in {@code
   * connect()} for the handshake. kwik 0.10.9 starts its receiver before {@code
   * startHandshake()} ({@code QuicClientConnectionImpl.connect}); a server that answers while
   * that method is still running (quiche does, in well under a millisecond on loopback) has
   * its ServerHello processed before the client's TLS state expects one. The handshake keys
   * are then never installed: every Handshake packet is discarded ("keys not installed") and
   * the dial hangs until its timeout. Against the native engine's server, 3 of 200 kwik dials
   * hung so, 0 of 400 with this wait (brpc-quic-netty's {@code KwikDialerHandshakeTest}). The
   * wait ends when the dialer parks in {@code connect()} on the handshake, or after {@value
   * #DIALER_WAIT_MILLIS} ms, once per socket.
   */
  @Override
  public void receive(DatagramPacket p) throws IOException {
    int capacity = p.getLength();
    while (true) {
      p.setLength(capacity);
      try {
        super.receive(p);
      } catch (PortUnreachableException e) {
        refusedByNetwork(); // not kwik's business: kwik would end the connection abruptly
        continue;
      }
      int[] versions = QuicPackets.versionNegotiation(p.getData(), p.getOffset(), p.getLength());
      if (versions != null) {
        if (!contains(versions, sentVersion)) {
          // kwik 0.10.9 ignores it and waits out its connect timeout: end the dial now.
          serverVersions = versions;
          onRefused.run();
        }
        continue; // one that lists our version is to be ignored (RFC 9000, section 6.2)
      }
      if (!QuicPackets.hasInvalidConnectionIdLength(p.getData(), p.getOffset(),
          p.getLength())) {
        break;
      }
      // RFC 9000 says drop it; kwik 0.10.9 would abort the dial on a forged Retry like it.
      log.log(Level.FINE, "dropped a datagram from {0} with an invalid connection id length",
          p.getSocketAddress());
    }
    heard = true;
    bytesReceived += p.getLength(); // one writer
    if (!dialerParked) {
      awaitDialerParked();
    }
  }

  /** UDP payload bytes received so far. */
  long bytesReceived() {
    return bytesReceived;
  }

  private void awaitDialerParked() {
    long deadline = System.nanoTime() + DIALER_WAIT_NANOS;
    while (dialer != Thread.currentThread() && !waitsForHandshake(dialer)
        && System.nanoTime() - deadline < 0) {
      LockSupport.parkNanos(DIALER_POLL_NANOS);
    }
    dialerParked = true;
  }

  /**
   * Whether {@code t} waits in kwik's {@code connect()} for the handshake to finish (its
   * {@code handshakeFinishedCondition.await}, {@code QuicClientConnectionImpl} line 386), i.e.
   * {@code startHandshake()} has returned. The
   * thread state alone does not tell: {@code startHandshake()} itself may wait for a lock.
   */
  private static boolean waitsForHandshake(Thread t) {
    Thread.State state = t.getState();
    if (state == Thread.State.TERMINATED) {
      return true;
    }
    if (state != Thread.State.TIMED_WAITING) {
      return false;
    }
    StackTraceElement[] stack = t.getStackTrace();
    for (int i = 1; i < stack.length; i++) {
      if (stack[i].getMethodName().equals("connect")
          && stack[i].getClassName().startsWith("tech.kwik.")) {
        // connect() waits on a CountDownLatch (handshakeFinishedCondition), line 386.
        return stack[i - 1].getMethodName().equals("await")
            && stack[i - 1].getClassName().equals("java.util.concurrent.CountDownLatch");
      }
    }
    return stack.length == 0; // no stack to look at: cannot tell, do not hold kwik up
  }

  /** Runs {@code r} (on whichever kwik thread saw it) when the network refuses the server. */
  void onRefused(Runnable r) {
    onRefused = r;
    if (refused) {
      r.run();
    }
  }

  private static boolean contains(int[] values, int value) {
    for (int v : values) {
      if (v == value) {
        return true;
      }
    }
    return false;
  }

  private void refusedByNetwork() {
    if (!refused) {
      log.log(Level.FINE, "ICMP port unreachable from {0}", getRemoteSocketAddress());
    }
    refused = true;
    onRefused.run();
  }

  @Override
  public void send(DatagramPacket p) throws IOException {
    byte[] data = p.getData();
    int offset = p.getOffset();
    int length = p.getLength();
    if (length >= 5 && (data[offset] & 0x80) != 0) {
      sentVersion = QuicPackets.version(data, offset);
    }
    int first = QuicPackets.handshakePacketLength(data, offset, length);
    if (first <= 0 || first >= length) {
      sendOne(p);
      return;
    }
    log.log(Level.FINER, "sending a Handshake packet of {0} bytes apart from the {1} bytes"
        + " coalesced after it", new Object[] {first, length - first});
    sendOne(slice(p, offset, first));
    sendOne(slice(p, offset + first, length - first));
  }

  /** A pending ICMP error may surface on a send too: noted, and the datagram counts as lost. */
  private void sendOne(DatagramPacket p) throws IOException {
    try {
      super.send(p);
    } catch (PortUnreachableException e) {
      refusedByNetwork();
    }
  }

  private static DatagramPacket slice(DatagramPacket p, int offset, int length) {
    DatagramPacket d = new DatagramPacket(p.getData(), offset, length);
    if (p.getAddress() != null) {
      d.setSocketAddress(p.getSocketAddress());
    }
    return d;
  }
}
