package dev.brpc.quic;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import dev.brpc.quic.internal.PeerGroupChannel;
import io.grpc.Channel;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A changing set of {@link PeerConnection}s that dialed this server, and one {@link Channel}
 * that spreads calls over them round-robin: a call on {@link #channel()} goes to one member.
 * It behaves as a grpc channel does over a changing set of servers: with no ready member a call
 * fails UNAVAILABLE, unless it is {@link io.grpc.CallOptions#withWaitForReady() wait-for-ready},
 * in which case it waits (within its deadline) for a member to join.
 *
 * <pre>{@code
 * PeerGroup agents = PeerGroup.create("agents");
 * // in a QuicConnectionListener: agents.add(connection) / agents.remove(connection)
 * AgentGrpc.newBlockingStub(agents.channel()).withWaitForReady().status(request);
 * }</pre>
 *
 * <p>Members leave by themselves when their connection closes. Thread-safe.
 */
public final class PeerGroup {
  private final PeerGroupChannel group;

  private PeerGroup(PeerGroupChannel group) {
    this.group = group;
  }

  /**
   * A group named {@code name} (the authority its calls carry, so it must be a valid URI
   * authority) whose channel accepts responses up to grpc's default of 4 MiB.
   *
   * @param name the group's name, a valid URI authority
   * @return a new, empty group
   */
  public static PeerGroup create(String name) {
    return create(name, 4 * 1024 * 1024);
  }

  /**
   * A group whose channel accepts responses up to {@code maxInboundMessageSize} bytes.
   *
   * @param name the group's name, a valid URI authority
   * @param maxInboundMessageSize the largest response the channel accepts, in bytes
   * @return a new, empty group
   */
  public static PeerGroup create(String name, int maxInboundMessageSize) {
    return create(name, maxInboundMessageSize, null);
  }

  /**
   * A group whose channel accepts responses up to {@code maxInboundMessageSize} bytes and is
   * configured by {@code configure} before it is built (interceptors, OpenTelemetry's
   * {@code configureChannelBuilder}, ...).
   *
   * @param name the group's name, a valid URI authority
   * @param maxInboundMessageSize the largest response the channel accepts, in bytes
   * @param configure applied to the channel's builder; null for nothing
   * @return a new, empty group
   */
  public static PeerGroup create(String name, int maxInboundMessageSize,
      Consumer<? super ManagedChannelBuilder<?>> configure) {
    checkNotNull(name, "name");
    checkArgument(maxInboundMessageSize > 0, "maxInboundMessageSize must be > 0");
    return new PeerGroup(new PeerGroupChannel(name, maxInboundMessageSize, configure));
  }

  /**
   * Adds a connection; false if it is already a member or already closed.
   *
   * @param connection the connection to add
   * @return true if it was added
   */
  public boolean add(PeerConnection connection) {
    return group.add(checkNotNull(connection, "connection"));
  }

  /**
   * Removes a connection; false if it was not a member.
   *
   * @param connection the connection to remove
   * @return true if it was removed
   */
  public boolean remove(PeerConnection connection) {
    return group.remove(checkNotNull(connection, "connection"));
  }

  /**
   * A snapshot of the members.
   *
   * @return the current members
   */
  public List<PeerConnection> members() {
    return group.members();
  }

  /**
   * The round-robin channel over the members. Shut it down through {@link #shutdown()}.
   *
   * @return the group's channel
   */
  public Channel channel() {
    return group.channel();
  }

  /**
   * True while at least one member can take a call.
   *
   * @return whether a member is ready
   */
  public boolean isReady() {
    return group.channel().getState(true) == ConnectivityState.READY;
  }

  /**
   * Waits until at least one member can take a call; returns false if none could within the
   * timeout.
   *
   * @param timeout how long to wait
   * @param unit the unit of {@code timeout}
   * @return true once a member is ready; false on timeout or if the group was shut down
   * @throws InterruptedException if interrupted while waiting
   */
  public boolean awaitReady(long timeout, TimeUnit unit) throws InterruptedException {
    ManagedChannel ch = group.channel();
    long deadline = System.nanoTime() + unit.toNanos(timeout);
    while (true) {
      ConnectivityState state = ch.getState(true);
      if (state == ConnectivityState.READY) {
        return true;
      }
      if (state == ConnectivityState.SHUTDOWN) {
        return false;
      }
      CountDownLatch changed = new CountDownLatch(1);
      ch.notifyWhenStateChanged(state, changed::countDown);
      if (!changed.await(deadline - System.nanoTime(), TimeUnit.NANOSECONDS)) {
        return false;
      }
    }
  }

  /** Refuses new calls on {@link #channel()}; calls in flight finish. */
  public void shutdown() {
    group.channel().shutdown();
  }

  /** Cancels the calls in flight on {@link #channel()} and refuses new ones. */
  public void shutdownNow() {
    group.channel().shutdownNow();
  }
}
