package dev.brpc.quic.internal;

import io.grpc.ChannelLogger;
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
 * Makes client transports attached to existing connections: the factory behind every channel
 * that calls a peer which dialed us ({@link PeerConnectionImpl#channel()}, group channels). Its
 * addresses are {@link ConnectionAddress}es, so such a channel never dials.
 *
 * <p>Thread-safe.
 */
final class AttachedTransportFactory implements ClientTransportFactory {

  /** The address of one existing connection (as grpc's AnonymousInProcessSocketAddress). */
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

  /** Settings every channel over attached transports shares. */
  static ManagedChannelImplBuilder configure(ManagedChannelImplBuilder builder,
      int maxInboundMessageSize) {
    builder.idleTimeout(31, TimeUnit.DAYS); // over 30 days disables idle mode
    builder.maxInboundMessageSize(maxInboundMessageSize);
    builder.setStatsRecordStartedRpcs(false);
    builder.setStatsRecordFinishedRpcs(false);
    builder.setStatsRecordRetryMetrics(false);
    return builder;
  }

  @Override
  public ConnectionClientTransport newClientTransport(SocketAddress address,
      ClientTransportOptions options, ChannelLogger channelLogger) {
    if (address instanceof NoPeerTransport.Address) {
      return new NoPeerTransport((NoPeerTransport.Address) address);
    }
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
    return java.util.List.of(ConnectionAddress.class, NoPeerTransport.Address.class);
  }
}
