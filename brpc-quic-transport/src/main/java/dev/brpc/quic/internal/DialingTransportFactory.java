package dev.brpc.quic.internal;

import dev.brpc.quic.QuicConnectionListener;
import io.grpc.Attributes;
import io.grpc.ChannelCredentials;
import io.grpc.ChannelLogger;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.internal.ClientTransportFactory;
import io.grpc.internal.ConnectionClientTransport;
import io.grpc.internal.GrpcUtil;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.SocketException;
import java.net.URI;
import java.security.KeyStore;
import java.time.Duration;
import java.util.Collection;
import java.util.Collections;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.net.ssl.X509TrustManager;
import tech.kwik.core.QuicClientConnection;

/**
 * Makes the transports of a {@code QuicChannel}: each dials one kwik connection to the
 * resolved address, verifies the server certificate against the channel's authority host,
 * sends SETTINGS with the connect metadata and, when the channel serves callbacks, attaches a
 * {@link CallbackServer} to the connection.
 *
 * <p>Thread-safe.
 */
public final class DialingTransportFactory implements ClientTransportFactory {
  private static final Logger log = Logger.getLogger(DialingTransportFactory.class.getName());

  /** Everything the public builder collected. */
  public static final class Options {
    public TransportConfig config = new TransportConfig();
    public KeyStore trustStore;
    public X509TrustManager trustManager;
    public boolean insecure;
    public Supplier<Metadata> connectMetadata = Metadata::new;
    public CallbackServer callbackServer;
    public QuicConnectionListener connectionListener;
  }

  private final Options options;

  public DialingTransportFactory(Options options) {
    KwikSendFix.requireAvailable();
    KwikReceiveHook.requireAvailable();
    this.options = options;
  }

  @Override
  public ConnectionClientTransport newClientTransport(SocketAddress address,
      ClientTransportOptions transportOptions, ChannelLogger channelLogger) {
    InetSocketAddress target = (InetSocketAddress) address;
    String authority = transportOptions.getAuthority();
    String userAgent = GrpcUtil.getGrpcUserAgent("brpc-quic", transportOptions.getUserAgent());
    return QuicClientTransport.dialing(new KwikDialer(target, authority),
        authority, userAgent, transportOptions.getEagAttributes(), options.config);
  }

  private final class KwikDialer implements QuicClientTransport.Dialer {
    private final InetSocketAddress target;
    private final String authority;
    private volatile PeerConnectionImpl peer;
    /** The attempt's socket, created by kwik through our factory during build(). */
    private volatile HandshakeSplittingSocket socket;

    KwikDialer(InetSocketAddress target, String authority) {
      this.target = target;
      this.authority = authority;
    }

    @Override
    public Connection dial() throws Exception {
      TransportConfig config = options.config;
      String tlsHost = hostOf(authority);
      QuicClientConnection.Builder b = QuicClientConnection.newBuilder()
          .applicationProtocol(Wire.ALPN)
          .host(tlsHost)
          .proxy(target.getAddress().getHostAddress())
          .port(target.getPort())
          .connectTimeout(Duration.ofNanos(
              Math.max(config.connectTimeoutNanos, config.handshakeTimeoutNanos)))
          .maxIdleTimeout(Duration.ofNanos(config.idleTimeoutNanos))
          .defaultStreamReceiveBufferSize(config.streamReceiveWindow)
          .maxOpenPeerInitiatedBidirectionalStreams(config.maxConcurrentCallsPerConnection)
          .maxOpenPeerInitiatedUnidirectionalStreams(2)
          .logger(KwikLogger.INSTANCE)
          .socketFactory(destination -> {
            HandshakeSplittingSocket s = new HandshakeSplittingSocket();
            socket = s;
            try {
              s.setReceiveBufferSize(4 * 1024 * 1024);
              s.setSendBufferSize(4 * 1024 * 1024);
            } catch (IOException e) {
              log.log(Level.FINE, "cannot enlarge UDP buffers", e);
            }
            return s;
          });
      if (options.insecure) {
        b.noServerCertificateCheck();
      } else if (options.trustManager != null) {
        b.customTrustManager(options.trustManager);
      } else if (options.trustStore != null) {
        b.customTrustStore(options.trustStore);
      }
      QuicClientConnection quic = b.build();
      Connection connection = new Connection(quic, true, target,
          new InetSocketAddress(0), config);
      // Set before connect(): streams arriving earlier would be dropped by kwik.
      quic.setPeerInitiatedStreamCallback(connection::onPeerStream);
      CallbackServer callbacks = options.callbackServer;
      connection.addListener(new Connection.Listener() {
        @Override
        public void settingsReceived(Metadata peerMetadata) {
          if (callbacks != null) {
            callbacks.attach(connection, peerMetadata);
          }
        }

        @Override
        public void terminated(Status status) {
          PeerConnectionImpl p = peer;
          QuicConnectionListener l = options.connectionListener;
          if (p != null) {
            p.closed();
            if (l != null) {
              l.disconnected(p, status);
            }
          } else if (l != null) {
            l.connectFailed(target, status);
          }
        }
      });
      // An attempt whose server has sent nothing at all within the connect timeout ends then;
      // once it answers, the handshake may take up to the handshake timeout (kwik's own
      // connect timeout). So a dead or unreachable server costs an attempt only the connect
      // timeout, and the next attempt starts with kwik's first, short retransmission interval;
      // while a server that is merely slow (many clients handshaking at once after a restart)
      // is not abandoned mid-handshake, which would only repeat its work.
      BlockingDeadline silent = new BlockingDeadline(config.connectTimeoutNanos, () -> {
        HandshakeSplittingSocket s = socket;
        return s == null || !s.heard;
      });
      try {
        quic.connect();
      } catch (IOException | RuntimeException e) {
        // Every failed attempt reaches connectFailed through terminated(), whatever kwik threw.
        String why = silent.settle() ? e.getMessage()
            : "no answer within the connect timeout (" + TimeUnit.NANOSECONDS.toMillis(
                config.connectTimeoutNanos) + " ms)";
        connection.terminate(Status.UNAVAILABLE.withDescription(
            "cannot connect to " + authority + " (" + target + "): " + why));
        throw e;
      }
      silent.settle();
      connection.sendSettings(options.connectMetadata.get());
      return connection;
    }

    @Override
    public void connected(Connection connection, Attributes attributes) {
      PeerConnectionImpl p = new PeerConnectionImpl(connection,
          connection.peerSettings.getNow(new Metadata()), attributes);
      peer = p;
      QuicConnectionListener l = options.connectionListener;
      if (l != null) {
        l.connected(p);
      }
      if (connection.terminatedStatus() != null) {
        p.closed();
      }
    }
  }

  /**
   * The dialer's UDP socket. It sends a datagram in which kwik put a Handshake packet in front
   * of other packets as two datagrams, so that a server that has discarded its handshake keys
   * still reads the packets behind it. Without this, about one fresh connection in eight (14 of
   * 120 on loopback, 2 cores) lost the datagram carrying our SETTINGS, so the connection became
   * ready, and calls started before then were answered, 30-130 ms late, once kwik had sent
   * SETTINGS again (dial to READY: p90 75 ms before, 49 ms after; median 37 and 34 ms).
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
   * Initial packet is never split: it must be padded to 1200 bytes as a whole. Only the dialer
   * needs this: kwik's server sends no Handshake packet once it has discarded the keys, which
   * it does before its first 1-RTT packet. Waiting for HANDSHAKE_DONE before sending SETTINGS
   * would also avoid the loss, but costs every connection a round trip and needs kwik's
   * internals to know when it arrived.
   *
   * <p>{@code HandshakeSplittingSocketTest} reproduces the drop on bare kwik;
   * {@code FirstRequestDelayTest} checks the datagrams a channel sends.
   *
   * <p>Thread-safe as {@link DatagramSocket} is; kwik sends from one thread.
   */
  static class HandshakeSplittingSocket extends DatagramSocket { // not final: tests extend it
    /** Set once anything arrived: the server answers (see the connect deadline in dial()). */
    volatile boolean heard;

    HandshakeSplittingSocket() throws SocketException {
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
      int first = handshakePacketLength(data, offset, length);
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

  private static final int QUIC_V1 = 0x00000001;
  private static final int QUIC_V2 = 0x6b3343cf;

  /**
   * The length of the QUIC packet that starts {@code data[offset]}, if it is a Handshake packet
   * (long header, QUIC version 1 or 2) whose header is well formed; -1 otherwise. The fields read
   * are not header-protected (RFC 9001 section 5.4.1 masks only the low bits of the first byte
   * and the packet number).
   */
  static int handshakePacketLength(byte[] data, int offset, int length) {
    int end = offset + length;
    if (length < 7 || (data[offset] & 0xc0) != 0xc0) {
      return -1; // a short header, or too short to be a long header
    }
    int type = (data[offset] & 0x30) >> 4;
    int version = ((data[offset + 1] & 0xff) << 24) | ((data[offset + 2] & 0xff) << 16)
        | ((data[offset + 3] & 0xff) << 8) | (data[offset + 4] & 0xff);
    boolean handshake = version == QUIC_V1 ? type == 2 : version == QUIC_V2 && type == 3;
    if (!handshake) {
      return -1;
    }
    int pos = offset + 5;
    for (int cid = 0; cid < 2; cid++) { // destination, then source connection id
      int cidLength = data[pos] & 0xff;
      if (cidLength > 20) {
        return -1;
      }
      pos += 1 + cidLength;
      if (pos >= end) {
        return -1;
      }
    }
    int varintSize = 1 << ((data[pos] & 0xff) >> 6);
    if (pos + varintSize > end) {
      return -1;
    }
    long payloadLength = data[pos] & 0x3f;
    for (int i = 1; i < varintSize; i++) {
      payloadLength = (payloadLength << 8) | (data[pos + i] & 0xff);
    }
    long packetEnd = pos + varintSize + payloadLength;
    return packetEnd > end ? -1 : (int) (packetEnd - offset);
  }

  /** The host part of an authority ({@code host:port} or {@code [v6]:port}). */
  static String hostOf(String authority) {
    try {
      String host = new URI(null, authority, null, null, null).getHost();
      if (host != null) {
        return host.startsWith("[") ? host.substring(1, host.length() - 1) : host;
      }
    } catch (java.net.URISyntaxException e) {
      // fall through
    }
    int colon = authority.lastIndexOf(':');
    return colon > 0 ? authority.substring(0, colon) : authority;
  }

  @Override
  public ScheduledExecutorService getScheduledExecutorService() {
    return SharedExecutors.timer();
  }

  @Override
  public SwapChannelCredentialsResult swapChannelCredentials(ChannelCredentials channelCreds) {
    return null;
  }

  @Override
  public Collection<Class<? extends SocketAddress>> getSupportedSocketAddressTypes() {
    return Collections.singleton(InetSocketAddress.class);
  }

  @Override
  public void close() {}
}
