package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.QuicAttributes;
import io.grpc.Attributes;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalInstrumented;
import io.grpc.Metadata;
import io.grpc.ServerStreamTracer;
import io.grpc.internal.InternalServer;
import io.grpc.internal.ServerListener;
import java.net.SocketAddress;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import io.grpc.Server;

/**
 * A grpc-java {@link InternalServer} that listens on nothing: it serves calls that arrive on
 * connections a {@code QuicChannel} dialed, one guest {@link QuicServerTransport} per
 * connection. Connections are pushed in with {@link #attach}, as grpc-java's servlet transport
 * pushes in its transports.
 *
 * <p>Thread-safe.
 */
public final class CallbackServer implements InternalServer {
  private static final SocketAddress ADDRESS = new SocketAddress() {
    private static final long serialVersionUID = 1L;

    @Override
    public String toString() {
      return "brpc-quic-callbacks";
    }
  };

  /** Servers built by {@code QuicServerBuilder.forCallbacks()}, for {@code QuicChannelBuilder}. */
  public static final Map<Server, CallbackServer> BUILT =
      Collections.synchronizedMap(new WeakHashMap<>());

  private final List<? extends ServerStreamTracer.Factory> tracerFactories;
  private final TransportConfig limits;
  private final Object lock = new Object();
  @GuardedBy("lock") private ServerListener listener;
  @GuardedBy("lock") private boolean shutdown;

  /**
   * @param limits the request limits ({@code maxInboundMessageSize},
   *     {@code maxInboundMetadataSize}) of the calls this server serves
   */
  public CallbackServer(List<? extends ServerStreamTracer.Factory> tracerFactories,
      TransportConfig limits) {
    this.tracerFactories = tracerFactories;
    this.limits = limits;
  }

  @Override
  public void start(ServerListener listener) {
    synchronized (lock) {
      this.listener = listener;
    }
  }

  /** Serves the peer's calls on {@code connection}; refuses them if not running. */
  void attach(Connection connection, Metadata peerMetadata) {
    ServerListener l;
    synchronized (lock) {
      l = shutdown ? null : listener;
    }
    if (l == null) {
      connection.refuseNewPeerStreams();
      return;
    }
    new QuicServerTransport(connection, false, tracerFactories, limits).start(l,
        Attributes.newBuilder().set(QuicAttributes.PEER_METADATA, peerMetadata).build());
  }

  @Override
  public void shutdown() {
    ServerListener l;
    synchronized (lock) {
      if (shutdown) {
        return;
      }
      shutdown = true;
      l = listener;
    }
    if (l != null) {
      l.serverShutdown();
    }
  }

  @Override
  public SocketAddress getListenSocketAddress() {
    return ADDRESS;
  }

  @Override
  public InternalInstrumented<SocketStats> getListenSocketStats() {
    return null;
  }

  @Override
  public List<? extends SocketAddress> getListenSocketAddresses() {
    return Collections.singletonList(ADDRESS);
  }

  @Override
  public List<InternalInstrumented<SocketStats>> getListenSocketStatsList() {
    return null;
  }
}
