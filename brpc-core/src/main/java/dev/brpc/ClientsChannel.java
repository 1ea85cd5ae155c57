package dev.brpc;

import dev.brpc.quic.PeerGroup;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.MethodDescriptor;
import java.util.concurrent.TimeUnit;

/**
 * A channel over a group of connected clients, all of them ({@link BrpcServer#allClients()})
 * or those sharing an affinity key ({@link BrpcServer#clientsWithKey(Object)}): each call goes
 * to one ready client, round-robin. As with any grpc channel, a call fails UNAVAILABLE when no
 * client is connected, unless it is wait-for-ready: then it waits, within its deadline, for one
 * to connect.
 *
 * <pre>{@code
 * ClientsChannel<NamerGrpc.NamerBlockingStub> agents = server.allClients();
 * if (agents.awaitReady(5, TimeUnit.SECONDS)) {
 *   agents.stub().name(NameRequest.getDefaultInstance());
 * }
 * NamerGrpc.newStub(agents).withWaitForReady().name(request, observer);
 * }</pre>
 *
 * <p>Thread-safe. Shut down with its server.
 *
 * @param <C> the server's client stub type
 */
public final class ClientsChannel<C> extends Channel {
  private final PeerGroup group;
  private final C stub;

  ClientsChannel(PeerGroup group, ClientServiceBuilder<C> builder) {
    this.group = group;
    this.stub = builder.build(this);
  }

  /**
   * A stub over this channel, built by the server's {@link ClientServiceBuilder}.
   *
   * @return the stub that calls the group's clients round-robin
   */
  public C stub() {
    return stub;
  }

  /**
   * True while at least one client of the group can take a call.
   *
   * @return whether a client of the group is ready
   */
  public boolean isReady() {
    return group.isReady();
  }

  /**
   * Waits until at least one client of the group can take a call; false if none could within
   * {@code timeout}.
   *
   * @param timeout how long to wait
   * @param unit the unit of {@code timeout}
   * @return true once a client is ready; false on timeout or once shut down
   * @throws InterruptedException if interrupted while waiting
   */
  public boolean awaitReady(long timeout, TimeUnit unit) throws InterruptedException {
    return group.awaitReady(timeout, unit);
  }

  @Override
  public <Q, R> ClientCall<Q, R> newCall(MethodDescriptor<Q, R> method, CallOptions options) {
    return group.channel().newCall(method, options);
  }

  @Override
  public String authority() {
    return group.channel().authority();
  }

  PeerGroup group() {
    return group;
  }
}
