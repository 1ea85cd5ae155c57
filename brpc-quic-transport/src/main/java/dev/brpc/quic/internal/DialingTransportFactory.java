package dev.brpc.quic.internal;

import dev.brpc.quic.QuicConnectionListener;
import dev.brpc.quic.engine.DialSpec;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineLimits;
import dev.brpc.quic.engine.QuicEngine;
import io.grpc.Attributes;
import io.grpc.ChannelCredentials;
import io.grpc.ChannelLogger;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.internal.ClientTransportFactory;
import io.grpc.internal.ConnectionClientTransport;
import io.grpc.internal.GrpcUtil;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.security.KeyStore;
import java.util.Collection;
import java.util.Collections;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.net.ssl.X509TrustManager;

/**
 * Makes the transports of a {@code QuicChannel}: each dials one QUIC connection to the
 * resolved address (with the engine the builder chose), verifies the server certificate
 * against the channel's authority host,
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
    /** The QUIC engine's name, or null for the default ({@link Engines#choose}). */
    public String engine;
  }

  private final Options options;
  private final QuicEngine engine;

  public DialingTransportFactory(Options options) {
    this.options = options;
    this.engine = Engines.choose(options.engine);
  }

  @Override
  public ConnectionClientTransport newClientTransport(SocketAddress address,
      ClientTransportOptions transportOptions, ChannelLogger channelLogger) {
    InetSocketAddress target = (InetSocketAddress) address;
    String authority = transportOptions.getAuthority();
    String userAgent = GrpcUtil.getGrpcUserAgent("brpc-quic", transportOptions.getUserAgent());
    return QuicClientTransport.dialing(new EngineDialer(target, authority),
        authority, userAgent, transportOptions.getEagAttributes(), options.config);
  }

  /** Engine-neutral limits for a connection with {@code config}. */
  static EngineLimits limits(TransportConfig config) {
    return new EngineLimits(config.idleTimeoutNanos, config.streamReceiveWindow,
        config.streamReceiveWindow * 10, config.maxConcurrentCallsPerConnection, 2);
  }

  private final class EngineDialer implements QuicClientTransport.Dialer {
    private final InetSocketAddress target;
    private final String authority;
    private volatile PeerConnectionImpl peer;

    EngineDialer(InetSocketAddress target, String authority) {
      this.target = target;
      this.authority = authority;
    }

    @Override
    public CompletableFuture<Connection> dial() {
      TransportConfig config = options.config;
      DialSpec spec = new DialSpec(target, hostOf(authority), Wire.ALPN, options.trustStore,
          options.trustManager, options.insecure, config.connectTimeoutNanos,
          config.handshakeTimeoutNanos, limits(config), config.qlogDirectory);
      return engine.dial(spec).handle((engineConnection, e) -> {
        if (e != null) {
          Throwable cause = e instanceof CompletionException ? e.getCause() : e;
          Status status = Status.UNAVAILABLE.withDescription("cannot connect to " + authority
              + " (" + target + "): " + cause.getMessage()).withCause(cause);
          QuicConnectionListener l = options.connectionListener;
          if (l != null) {
            try {
              l.connectFailed(target, status);
            } catch (RuntimeException thrown) {
              log.log(Level.WARNING, "QuicConnectionListener.connectFailed threw", thrown);
            }
          }
          throw new CompletionException(status.asException());
        }
        return started(engineConnection);
      });
    }

    private Connection started(EngineConnection engineConnection) {
      Connection connection = new Connection(engineConnection, engine.name(), true,
          options.config);
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
          try {
            if (p != null) {
              p.closed();
              if (l != null) {
                l.disconnected(p, status);
              }
            } else if (l != null) {
              l.connectFailed(target, status);
            }
          } catch (RuntimeException e) {
            // A throwing listener must not keep the transport from hearing terminated().
            log.log(Level.WARNING, "QuicConnectionListener threw", e);
          }
        }
      });
      connection.start();
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
        try {
          l.connected(p);
        } catch (RuntimeException e) {
          log.log(Level.WARNING, "QuicConnectionListener.connected threw", e);
        }
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
