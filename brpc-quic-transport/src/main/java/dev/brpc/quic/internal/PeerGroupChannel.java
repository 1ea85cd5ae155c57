package dev.brpc.quic.internal;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import dev.brpc.quic.PeerConnection;
import io.grpc.EquivalentAddressGroup;
import io.grpc.ManagedChannel;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.StatusOr;
import io.grpc.SynchronizationContext;
import io.grpc.ManagedChannelBuilder;
import io.grpc.internal.ManagedChannelImplBuilder;
import java.net.SocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A grpc channel over a changing set of peer connections: its name resolver reports the
 * members' {@link AttachedTransportFactory.ConnectionAddress}es and grpc's {@code round_robin}
 * policy (from grpc-util) spreads calls over the members that are ready. Everything else is
 * grpc's own channel behaviour: with no ready member a call fails UNAVAILABLE, or waits if it is
 * wait-for-ready; the channel's state is READY while any member is. An empty group reports one
 * {@link NoPeerTransport.Address}, whose transport never starts.
 *
 * <p>Thread-safe. The resolver's updates run in the channel's synchronization context.
 */
public final class PeerGroupChannel {
  private static final String SCHEME = "brpc-group";

  private final String name;
  private final NoPeerTransport.Address noPeer;
  private final ManagedChannel channel;
  private final Object lock = new Object();
  @GuardedBy("lock") private final Set<PeerConnectionImpl> members = new LinkedHashSet<>();
  @GuardedBy("lock") private Resolver resolver;

  public PeerGroupChannel(String name, int maxInboundMessageSize,
      Consumer<? super ManagedChannelBuilder<?>> configure) {
    this.name = name;
    this.noPeer = new NoPeerTransport.Address(name);
    ManagedChannelImplBuilder builder = new ManagedChannelImplBuilder(SCHEME + ":///members",
        null, null, AttachedTransportFactory::new, null, null, new Provider());
    builder.defaultLoadBalancingPolicy("round_robin");
    builder.overrideAuthority(name);
    AttachedTransportFactory.configure(builder, maxInboundMessageSize);
    if (configure != null) {
      configure.accept(builder);
    }
    this.channel = builder.build();
  }

  public ManagedChannel channel() {
    return channel;
  }

  /** Adds a peer; false if it was a member or is closed. */
  public boolean add(PeerConnection peer) {
    PeerConnectionImpl p = impl(peer);
    if (!p.isOpen()) {
      return false;
    }
    Resolver r;
    synchronized (lock) {
      if (!members.add(p)) {
        return false;
      }
      r = resolver;
    }
    if (r != null) {
      r.update();
    }
    p.whenClosed(() -> remove(p));
    return true;
  }

  /** Removes a peer; false if it was not a member. */
  public boolean remove(PeerConnection peer) {
    Resolver r;
    synchronized (lock) {
      if (!members.remove(impl(peer))) {
        return false;
      }
      r = resolver;
    }
    if (r != null) {
      r.update();
    }
    return true;
  }

  public List<PeerConnection> members() {
    synchronized (lock) {
      return List.copyOf(members);
    }
  }

  private static PeerConnectionImpl impl(PeerConnection peer) {
    if (!(peer instanceof PeerConnectionImpl)) {
      throw new IllegalArgumentException("not a connection of this transport: " + peer);
    }
    return (PeerConnectionImpl) peer;
  }

  private final class Provider extends NameResolverProvider {
    @Override
    public NameResolver newNameResolver(URI targetUri, NameResolver.Args args) {
      return SCHEME.equals(targetUri.getScheme()) ? new Resolver(args) : null;
    }

    @Override
    public String getDefaultScheme() {
      return SCHEME;
    }

    @Override
    protected boolean isAvailable() {
      return true;
    }

    @Override
    protected int priority() {
      return 5;
    }

    @Override
    public Collection<Class<? extends SocketAddress>> getProducedSocketAddressTypes() {
      return List.of(AttachedTransportFactory.ConnectionAddress.class,
          NoPeerTransport.Address.class);
    }
  }

  /** Reports the members; one per channel (a new one after the channel leaves idle mode). */
  private final class Resolver extends NameResolver {
    private final SynchronizationContext syncContext;
    private Listener2 listener; // only touched in syncContext

    Resolver(Args args) {
      this.syncContext = args.getSynchronizationContext();
    }

    @Override
    public String getServiceAuthority() {
      return name;
    }

    @Override
    public void start(Listener2 listener) {
      this.listener = listener;
      synchronized (lock) {
        resolver = this;
      }
      push();
    }

    @Override
    public void refresh() {
      push();
    }

    @Override
    public void shutdown() {
      listener = null;
      synchronized (lock) {
        if (resolver == this) {
          resolver = null;
        }
      }
    }

    /** From any thread. */
    void update() {
      syncContext.execute(this::push);
    }

    private void push() {
      if (listener == null) {
        return;
      }
      List<EquivalentAddressGroup> groups = new ArrayList<>();
      synchronized (lock) {
        for (PeerConnectionImpl p : members) {
          groups.add(new EquivalentAddressGroup(p.address()));
        }
      }
      if (groups.isEmpty()) {
        groups.add(new EquivalentAddressGroup(noPeer));
      }
      listener.onResult2(ResolutionResult.newBuilder()
          .setAddressesOrError(StatusOr.fromValue(groups)).build());
    }
  }
}
