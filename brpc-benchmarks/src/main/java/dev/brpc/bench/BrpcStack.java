package dev.brpc.bench;

import dev.brpc.BrpcClient;
import dev.brpc.BrpcServer;
import dev.brpc.ClientListener;
import dev.brpc.ConnectedClient;
import dev.brpc.Route;
import dev.brpc.bench.proto.BenchGrpc;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * brpc as users run it: a {@link BrpcServer} serving {@link BenchService}, and
 * {@link BrpcClient}s that serve {@link BenchService} back to it. Default settings throughout,
 * on the QUIC engine named at construction (both engines are on this module's class path).
 *
 * <p>For the forwarded rows, an agent client serves the same service under the name {@value
 * #AGENT_SERVICE}, which the server does not implement: its director forwards every such call
 * to the agent.
 *
 * <p>Thread-safe.
 */
final class BrpcStack implements Stack {
  static final String AGENT_SERVICE = "brpc.bench.Agent";
  private static final Metadata.Key<String> ROLE =
      Metadata.Key.of("bench-role", Metadata.ASCII_STRING_MARSHALLER);
  private final Certificates certs;
  private final String engine;

  BrpcStack(Certificates certs, String engine) {
    this.certs = certs;
    this.engine = engine;
  }

  @Override
  public Listening serve() throws Exception {
    ConnectionCount count = new ConnectionCount();
    AtomicReference<Route> agent = new AtomicReference<>();
    BrpcServer<BenchGrpc.BenchBlockingStub> server =
        BrpcServer.forAddress(new InetSocketAddress("127.0.0.1", 0), BenchGrpc::newBlockingStub)
            .useTransportSecurity(certs.certFile().toFile(), certs.keyFile().toFile())
            .engine(engine)
            .addService(new BenchService())
            .director(call -> agent.get())
            .addListener(new ClientListener<>() {
              @Override
              public void connected(ConnectedClient<BenchGrpc.BenchBlockingStub> client) {
                if ("agent".equals(client.connectMetadata().get(ROLE))) {
                  agent.set(Route.to(client));
                  return; // not counted: not one of the workloads' clients
                }
                count.connected();
              }

              @Override
              public void disconnected(ConnectedClient<BenchGrpc.BenchBlockingStub> client,
                  Status status) {
                if ("agent".equals(client.connectMetadata().get(ROLE))) {
                  return;
                }
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

  @Override
  public Caller forwarded(int port) {
    Metadata role = new Metadata();
    role.put(ROLE, "agent");
    BrpcClient agent = connect(BrpcClient.forAddress("localhost", port)
        .trustCertificates(certs.certFile().toFile())
        .engine(engine)
        .connectMetadata(role)
        .addService(renamed(new BenchService().bindService(), AGENT_SERVICE)));
    BrpcClient caller;
    try {
      caller = connect(BrpcClient.forAddress("localhost", port)
          .trustCertificates(certs.certFile().toFile())
          .engine(engine));
    } catch (RuntimeException e) {
      agent.shutdownNow();
      throw e;
    }
    Channel toAgent = ClientInterceptors.intercept(caller.channel(), new ToService(AGENT_SERVICE));
    return new GrpcCaller(BenchGrpc.newBlockingStub(toAgent), () -> {
      caller.close();
      agent.close();
    });
  }

  private static BrpcClient connect(BrpcClient.Builder builder) {
    BrpcClient client = builder.build();
    try {
      client.connect(30, TimeUnit.SECONDS);
    } catch (RuntimeException e) {
      client.shutdownNow();
      throw e;
    }
    return client;
  }

  /** {@code definition}'s methods under another service name. */
  static ServerServiceDefinition renamed(ServerServiceDefinition definition, String service) {
    ServerServiceDefinition.Builder b = ServerServiceDefinition.builder(service);
    for (ServerMethodDefinition<?, ?> m : definition.getMethods()) {
      add(b, m, service);
    }
    return b.build();
  }

  private static <Q, R> void add(ServerServiceDefinition.Builder b, ServerMethodDefinition<Q, R> m,
      String service) {
    b.addMethod(rename(m.getMethodDescriptor(), service), m.getServerCallHandler());
  }

  static <Q, R> MethodDescriptor<Q, R> rename(MethodDescriptor<Q, R> method, String service) {
    return method.toBuilder().setFullMethodName(
        MethodDescriptor.generateFullMethodName(service, method.getBareMethodName())).build();
  }

  /** Sends each call to the same method of {@code service}. Thread-safe. */
  private static final class ToService implements ClientInterceptor {
    private final String service;
    private final Map<MethodDescriptor<?, ?>, MethodDescriptor<?, ?>> renamed =
        new ConcurrentHashMap<>();

    ToService(String service) {
      this.service = service;
    }

    @Override
    @SuppressWarnings("unchecked")
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method,
        CallOptions options, Channel next) {
      return next.newCall((MethodDescriptor<Q, R>) renamed.computeIfAbsent(method,
          m -> rename(method, service)), options);
    }
  }
}
