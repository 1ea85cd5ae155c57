package dev.brpc.bench;

import dev.brpc.BrpcClient;
import dev.brpc.BrpcServer;
import dev.brpc.ClientListener;
import dev.brpc.ConnectedClient;
import dev.brpc.bench.proto.BenchGrpc;
import io.grpc.Status;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * brpc as users run it: a {@link BrpcServer} serving {@link BenchService}, and
 * {@link BrpcClient}s that serve {@link BenchService} back to it. Default settings throughout,
 * on the QUIC engine named at construction (both engines are on this module's class path).
 *
 * <p>Thread-safe.
 */
final class BrpcStack implements Stack {
  private final Certificates certs;
  private final String engine;

  BrpcStack(Certificates certs, String engine) {
    this.certs = certs;
    this.engine = engine;
  }

  @Override
  public Listening serve() throws Exception {
    ConnectionCount count = new ConnectionCount();
    BrpcServer<BenchGrpc.BenchBlockingStub> server =
        BrpcServer.forAddress(new InetSocketAddress("127.0.0.1", 0), BenchGrpc::newBlockingStub)
            .useTransportSecurity(certs.certFile().toFile(), certs.keyFile().toFile())
            .engine(engine)
            .addService(new BenchService())
            .addListener(new ClientListener<>() {
              @Override
              public void connected(ConnectedClient<BenchGrpc.BenchBlockingStub> client) {
                count.connected();
              }

              @Override
              public void disconnected(ConnectedClient<BenchGrpc.BenchBlockingStub> client,
                  Status status) {
                count.disconnected();
              }
            })
            .build()
            .start();
    return new Listening() {
      @Override
      public int port() {
        return server.port();
      }

      @Override
      public void awaitClients(int n, Duration timeout)
          throws InterruptedException, TimeoutException {
        count.awaitAtLeast(n, timeout);
      }

      @Override
      public Caller callbacks() {
        List<ConnectedClient<BenchGrpc.BenchBlockingStub>> clients = server.clients();
        if (clients.isEmpty()) {
          throw new IllegalStateException("no client connected to call back");
        }
        // The stub the ClientServiceBuilder made for that client, over its own connection.
        return new GrpcCaller(clients.get(0).stub(), () -> { });
      }
    };
  }

  @Override
  public Caller dial(int port) {
    BrpcClient client = BrpcClient.forAddress("localhost", port)
        .trustCertificates(certs.certFile().toFile())
        .engine(engine)
        .addService(new BenchService())
        .build();
    try {
      client.connect(30, TimeUnit.SECONDS);
    } catch (RuntimeException e) {
      client.shutdownNow();
      throw e;
    }
    return new GrpcCaller(BenchGrpc.newBlockingStub(client.channel()), client::close);
  }
}
