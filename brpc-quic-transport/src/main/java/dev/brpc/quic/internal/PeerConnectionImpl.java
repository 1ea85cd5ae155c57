package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.ConnectionInfo;
import dev.brpc.quic.PeerConnection;
import io.grpc.Attributes;
import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.internal.ManagedChannelImplBuilder;
import java.net.SocketAddress;
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
  private final AttachedTransportFactory.ConnectionAddress address;
  private final Metadata peerMetadata;
  private final Attributes attributes;
  private final Object lock = new Object();
  @GuardedBy("lock") private ManagedChannel channel;
  @GuardedBy("lock") private boolean closed;
  @GuardedBy("lock") private final java.util.List<Runnable> closeHooks = new java.util.ArrayList<>();

  PeerConnectionImpl(Connection connection, Metadata peerMetadata, Attributes attributes) {
    this.connection = connection;
    this.address = new AttachedTransportFactory.ConnectionAddress(connection);
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
  public ConnectionInfo info() {
    return connection.info();
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
    java.util.List<Runnable> hooks;
    synchronized (lock) {
      closed = true;
      c = channel;
      hooks = java.util.List.copyOf(closeHooks);
      closeHooks.clear();
    }
    if (c != null) {
      // The connection has failed its calls with its own reason already ("connection stalled",
      // "peer not answering", ...). A shutdownNow() at once can overtake that status on its way
      // to a call (grpc's retry layer hands it over asynchronously) and replace it with "Channel
      // shutdownNow invoked" (KilledPeerTest, under callbacks). So new calls are refused now, and
      // what still waits for a transport (wait-for-ready calls) is cancelled a second later.
      c.shutdown();
      SharedExecutors.timer().schedule(c::shutdownNow, 1, TimeUnit.SECONDS);
    }
    hooks.forEach(Runnable::run);
  }

  /** Runs {@code hook} once the connection has closed: now if it already has. */
  void whenClosed(Runnable hook) {
    synchronized (lock) {
      if (!closed) {
        closeHooks.add(hook);
        return;
      }
    }
    hook.run();
  }

  private ManagedChannel newChannel() {
    ManagedChannelImplBuilder builder = new ManagedChannelImplBuilder(
        address, connection.id, null, null, AttachedTransportFactory::new, null);
    AttachedTransportFactory.configure(builder, connection.config.maxInboundMessageSize);
    if (connection.config.peerChannelConfig != null) {
      connection.config.peerChannelConfig.accept(builder);
    }
    return builder.build();
  }

  /**
   * The address of this connection, one instance for its lifetime: load balancers compare
   * addresses, so a group channel must see the same one on every update.
   */
  AttachedTransportFactory.ConnectionAddress address() {
    return address;
  }
}
