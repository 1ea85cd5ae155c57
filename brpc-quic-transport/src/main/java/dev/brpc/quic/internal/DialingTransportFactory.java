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
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.security.KeyStore;
import java.time.Duration;
import java.util.Collection;
import java.util.Collections;
import java.util.concurrent.ScheduledExecutorService;
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
          .connectTimeout(Duration.ofNanos(config.connectTimeoutNanos))
          .maxIdleTimeout(Duration.ofNanos(config.idleTimeoutNanos))
          .defaultStreamReceiveBufferSize(config.streamReceiveWindow)
          .maxOpenPeerInitiatedBidirectionalStreams(config.maxConcurrentCallsPerConnection)
          .maxOpenPeerInitiatedUnidirectionalStreams(2)
          .logger(KwikLogger.INSTANCE)
          .socketFactory(destination -> {
            DatagramSocket s = new DatagramSocket();
            try {
              s.setReceiveBufferSize(4 * 1024 * 1024);
              s.setSendBufferSize(4 * 1024 * 1024);
            } catch (java.io.IOException e) {
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
      try {
        quic.connect();
      } catch (java.io.IOException | RuntimeException e) {
        // Every failed attempt reaches connectFailed through terminated(), whatever kwik threw.
        connection.terminate(Status.UNAVAILABLE.withDescription(
            "cannot connect to " + authority + " (" + target + "): " + e.getMessage()));
        throw e;
      }
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
