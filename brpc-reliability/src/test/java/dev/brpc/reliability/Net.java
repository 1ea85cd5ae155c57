package dev.brpc.reliability;

import dev.brpc.BrpcClient;
import dev.brpc.BrpcServer;
import dev.brpc.ClientListener;
import dev.brpc.ConnectedClient;
import dev.brpc.quic.SelfSignedCertificate;
import dev.brpc.reliability.proto.ProbeGrpc;
import dev.brpc.fixtures.SevereLogs;
import dev.brpc.fixtures.UdpRelay;
import io.grpc.Status;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;

/**
 * A {@link BrpcServer} on 127.0.0.1 serving {@link ProbeService}, a {@link UdpRelay} in front
 * of it, and the {@link BrpcClient}s a test makes, each serving its own ProbeService and
 * dialing the relay (or the server directly). {@link #close()} shuts everything down, fails if
 * anything does not terminate or if gRPC or brpc logged at SEVERE.
 *
 * <p>Not thread-safe: used by one test.
 */
final class Net {
  static final SelfSignedCertificate CERT = SelfSignedCertificate.generate("localhost");

  private final SevereLogs severe = SevereLogs.start();
  final ProbeService serverProbe = new ProbeService();
  final LinkedBlockingQueue<UUID> connected = new LinkedBlockingQueue<>();
  final LinkedBlockingQueue<UUID> disconnected = new LinkedBlockingQueue<>();
  final UnaryOperator<BrpcServer.Builder<ProbeGrpc.ProbeBlockingStub>> serverConfig;
  BrpcServer<ProbeGrpc.ProbeBlockingStub> server;
  final UdpRelay relay;
  private final List<BrpcClient> clients = new ArrayList<>();
  private final List<BrpcServer<?>> servers = new ArrayList<>();

  Net(long seed) throws Exception {
    this(seed, b -> b);
  }

  Net(long seed, UnaryOperator<BrpcServer.Builder<ProbeGrpc.ProbeBlockingStub>> serverConfig)
      throws Exception {
    this.serverConfig = serverConfig;
    server = startServer(0);
    relay = UdpRelay.start(new InetSocketAddress("127.0.0.1", server.port()), seed);
  }

  /** Starts a server (again) on {@code port}; 0 picks one. */
  BrpcServer<ProbeGrpc.ProbeBlockingStub> startServer(int port) throws Exception {
    BrpcServer<ProbeGrpc.ProbeBlockingStub> s = serverConfig.apply(
        BrpcServer.forAddress(new InetSocketAddress("127.0.0.1", port),
                ProbeGrpc::newBlockingStub)
            .useTransportSecurity(CERT)
            .addService(serverProbe)
            .addListener(new ClientListener<>() {
              @Override
              public void connected(ConnectedClient<ProbeGrpc.ProbeBlockingStub> client) {
                connected.add(client.id());
              }

              @Override
              public void disconnected(ConnectedClient<ProbeGrpc.ProbeBlockingStub> client,
                  Status status) {
                disconnected.add(client.id());
              }
            }))
        .build().start();
    servers.add(s);
    server = s;
    return s;
  }

  /** A client of the relay serving {@code probe}. */
  BrpcClient.Builder viaRelay(ProbeService probe) {
    return builder(probe, relay.port());
  }

  /** A client of the server itself, bypassing the relay. */
  BrpcClient.Builder direct(ProbeService probe) {
    return builder(probe, server.port());
  }

  private static BrpcClient.Builder builder(ProbeService probe, int port) {
    return BrpcClient.forAddress("localhost", port).trustCertificate(CERT.certificate())
        .addService(probe);
  }

  /** Builds, tracks and connects (waiting up to 30 s). */
  BrpcClient connect(BrpcClient.Builder builder) {
    BrpcClient c = track(builder.build());
    c.connect(30, TimeUnit.SECONDS);
    return c;
  }

  BrpcClient track(BrpcClient c) {
    synchronized (clients) {
      clients.add(c);
    }
    return c;
  }

  /**
   * Connects a first client and lets it leave, so that the server's lazily created threads
   * exist before a test takes its baseline; the events it caused are cleared.
   */
  void warmUp() throws InterruptedException {
    connect(direct(new ProbeService())).close();
    if (disconnected.poll(20, TimeUnit.SECONDS) == null) {
      throw new AssertionError("the warm-up client did not leave");
    }
    connected.clear();
  }

  /** The server's view of a connected client. */
  ConnectedClient<ProbeGrpc.ProbeBlockingStub> serverSide(BrpcClient c) {
    return server.client(c.id()).orElseThrow(() -> new AssertionError("not registered"));
  }

  static ProbeGrpc.ProbeFutureStub probe(io.grpc.Channel channel) {
    return ProbeGrpc.newFutureStub(channel);
  }

  void close() throws InterruptedException {
    List<BrpcClient> all;
    synchronized (clients) {
      all = new ArrayList<>(clients);
    }
    for (BrpcClient c : all) {
      c.shutdownNow();
    }
    for (BrpcServer<?> s : servers) {
      s.shutdownNow();
    }
    relay.close();
    for (BrpcClient c : all) {
      if (!c.awaitTermination(20, TimeUnit.SECONDS)) {
        throw new AssertionError("client did not terminate");
      }
    }
    for (BrpcServer<?> s : servers) {
      if (!s.awaitTermination(40, TimeUnit.SECONDS)) {
        throw new AssertionError("server did not terminate");
      }
    }
    severe.assertNone();
  }
}
