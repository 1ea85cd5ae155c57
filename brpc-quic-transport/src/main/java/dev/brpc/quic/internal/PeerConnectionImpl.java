package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.PeerConnection;
import io.grpc.Attributes;
import io.grpc.Channel;
import io.grpc.ChannelLogger;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.internal.ClientTransportFactory;
import io.grpc.internal.ConnectionClientTransport;
import io.grpc.internal.GrpcUtil;
import io.grpc.internal.ManagedChannelImplBuilder;
import java.net.SocketAddress;
import java.util.Collection;
import java.util.Collections;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * {@link PeerConnection} over a {@link Connection}. Its {@link #channel()} is a grpc
 * {@link ManagedChannel} bound to this one connection (as grpc-java's
 * {@code AnonymousInProcessSocketAddress} binds a channel to one in-process server): every
 * transport it creates is a {@link QuicClientTransport} attached to the connection, never a
 * new connection. It is shut down when the connection terminates.
 *
 * <p>Thread-safe.
 */
final class PeerConnectionImpl implements PeerConnection {
  private final Connection connection;
  private final Metadata peerMetadata;
  private final Attributes attributes;
  private final Object lock = new Object();
  @GuardedBy("lock") private ManagedChannel channel;
  @GuardedBy("lock") private boolean closed;

  PeerConnectionImpl(Connection connection, Metadata peerMetadata, Attributes attributes) {
    this.connection = connection;
    this.peerMetadata = peerMetadata;
    this.attributes = attributes;
  }

  @Override
  public String id() {
    return connection.id;
  }

  @Override
  public SocketAddress remoteAddress() {
    return connection.remoteAddress;
  }

  @Override
  public Metadata peerMetadata() {
    Metadata copy = new Metadata();
    copy.merge(peerMetadata);
    return copy;
  }

  @Override
  public Attributes attributes() {
    return attributes;
  }

  @Override
  public boolean isOpen() {
    return connection.terminatedStatus() == null;
  }

  @Override
  public Channel channel() {
    synchronized (lock) {
      if (channel == null) {
        channel = newChannel();
        if (closed) {
          channel.shutdown();
        }
      }
      return channel;
    }
  }

  /** The connection is gone: in-flight calls have failed already; refuse new ones. */
  void closed() {
    ManagedChannel c;
    synchronized (lock) {
      closed = true;
      c = channel;
    }
    if (c != null) {
      c.shutdownNow();
    }
  }

  private ManagedChannel newChannel() {
    ManagedChannelImplBuilder builder = new ManagedChannelImplBuilder(
        new ConnectionAddress(connection), connection.id, null, null,
        () -> new AttachedTransportFactory(), null);
    builder.idleTimeout(31, TimeUnit.DAYS); // over 30 days disables idle mode
    builder.maxInboundMessageSize(connection.config.maxInboundMessageSize);
    builder.setStatsRecordStartedRpcs(false);
    builder.setStatsRecordFinishedRpcs(false);
    builder.setStatsRecordRetryMetrics(false);
    return builder.build();
  }

  /** The address of one existing connection: a channel built on it never dials. */
  static final class ConnectionAddress extends SocketAddress {
    private static final long serialVersionUID = 1L;
    final transient Connection connection;

    ConnectionAddress(Connection connection) {
      this.connection = connection;
    }

    @Override
    public String toString() {
      return connection.toString();
    }
  }

  /** Makes transports attached to the connection of a {@link ConnectionAddress}. */
  private static final class AttachedTransportFactory implements ClientTransportFactory {
    @Override
    public ConnectionClientTransport newClientTransport(SocketAddress address,
        ClientTransportOptions options, ChannelLogger channelLogger) {
      Connection c = ((ConnectionAddress) address).connection;
      return QuicClientTransport.attached(c, options.getAuthority(),
          GrpcUtil.getGrpcUserAgent("brpc-quic", options.getUserAgent()),
          options.getEagAttributes());
    }

    @Override
    public ScheduledExecutorService getScheduledExecutorService() {
      return SharedExecutors.timer();
    }

    @Override
    public SwapChannelCredentialsResult swapChannelCredentials(
        io.grpc.ChannelCredentials channelCreds) {
      return null;
    }

    @Override
    public void close() {}

    @Override
    public Collection<Class<? extends SocketAddress>> getSupportedSocketAddressTypes() {
      return Collections.singleton(ConnectionAddress.class);
    }
  }
}
