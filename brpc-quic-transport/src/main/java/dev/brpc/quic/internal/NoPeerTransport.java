package dev.brpc.quic.internal;

import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.ClientStreamTracer;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalLogId;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.internal.ClientStream;
import io.grpc.internal.ClientStreamListener.RpcProgress;
import io.grpc.internal.ConnectionClientTransport;
import io.grpc.internal.FailingClientStream;
import io.grpc.internal.SimpleDisconnectError;
import java.net.SocketAddress;
import java.util.concurrent.Executor;

/**
 * The transport of an empty {@link PeerGroupChannel}: it fails to start with
 * {@link #status}, so the channel is in TRANSIENT_FAILURE and its calls fail with "no peer
 * connected" (or wait, if wait-for-ready). A resolver error would say the same but makes grpc
 * log a WARNING on every update, and an empty group is a normal state, not an error.
 *
 * <p>Thread-safe.
 */
final class NoPeerTransport implements ConnectionClientTransport {
  /** The address the group's resolver reports while it has no member. */
  static final class Address extends SocketAddress {
    private static final long serialVersionUID = 1L;
    final String group;

    Address(String group) {
      this.group = group;
    }

    @Override
    public String toString() {
      return "no-peer:" + group;
    }
  }

  private final InternalLogId logId = InternalLogId.allocate(NoPeerTransport.class, null);
  private final Status status;

  NoPeerTransport(Address address) {
    this.status = Status.UNAVAILABLE.withDescription("no peer connected to " + address.group);
  }

  @Override
  public Runnable start(Listener listener) {
    return () -> {
      listener.transportShutdown(status, SimpleDisconnectError.CONNECTION_ABORTED);
      listener.transportTerminated();
    };
  }

  @Override
  public ClientStream newStream(MethodDescriptor<?, ?> method, Metadata headers,
      CallOptions callOptions, ClientStreamTracer[] tracers) {
    return new FailingClientStream(status, RpcProgress.PROCESSED, tracers);
  }

  @Override
  public void ping(PingCallback callback, Executor executor) {
    executor.execute(() -> callback.onFailure(status));
  }

  @Override
  public void shutdown(Status reason) {}

  @Override
  public void shutdownNow(Status reason) {}

  @Override
  public Attributes getAttributes() {
    return Attributes.EMPTY;
  }

  @Override
  public ListenableFuture<SocketStats> getStats() {
    return Futures.immediateFuture(null);
  }

  @Override
  public InternalLogId getLogId() {
    return logId;
  }
}
