package dev.brpc;

import dev.brpc.quic.SelfSignedCertificate;
import dev.brpc.test.AgentGrpc;
import dev.brpc.test.HubGrpc;
import dev.brpc.test.Rep;
import dev.brpc.test.Req;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;

/**
 * A {@link BrpcServer} on 127.0.0.1 (ephemeral port, self-signed certificate) serving
 * {@link Hub}, and the {@link BrpcClient}s a test makes, each serving {@link Agent} under a
 * name. {@link #close()} shuts everything down and fails if anything does not terminate.
 *
 * <p>Not thread-safe: used by one test.
 */
final class Fixture {
  static final SelfSignedCertificate CERT = SelfSignedCertificate.generate("localhost");

  final Hub hub = new Hub();
  /** Ids of clients the server saw disconnect, in order. */
  final LinkedBlockingQueue<java.util.UUID> disconnected = new LinkedBlockingQueue<>();
  final BrpcServer<AgentGrpc.AgentBlockingStub> server;
  private final List<BrpcClient> clients = new ArrayList<>();
  private final List<BrpcServer<?>> servers = new ArrayList<>();

  Fixture() throws Exception {
    this(b -> b);
  }

  Fixture(UnaryOperator<BrpcServer.Builder<AgentGrpc.AgentBlockingStub>> config)
      throws Exception {
    server = startServer(0, config);
    hub.server = server;
  }

  BrpcServer<AgentGrpc.AgentBlockingStub> startServer(int port,
      UnaryOperator<BrpcServer.Builder<AgentGrpc.AgentBlockingStub>> config) throws Exception {
    BrpcServer<AgentGrpc.AgentBlockingStub> s = config.apply(
        BrpcServer.forAddress(new InetSocketAddress("127.0.0.1", port),
                AgentGrpc::newBlockingStub)
            .useTransportSecurity(CERT)
            .addService(hub)
            .addListener(new ClientListener<>() {
              @Override
              public void disconnected(ConnectedClient<AgentGrpc.AgentBlockingStub> client,
                  Status status) {
                disconnected.add(client.id());
              }
            }))
        .build().start();
    servers.add(s);
    return s;
  }

  /** A client builder for this server whose Agent answers with {@code name}. */
  BrpcClient.Builder clientBuilder(Agent agent) {
    return clientBuilder(agent, server.port());
  }

  BrpcClient.Builder clientBuilder(Agent agent, int port) {
    BrpcClient.Builder b = BrpcClient.forAddress("localhost", port)
        .trustCertificate(CERT.certificate());
    if (agent != null) {
      b.addService(agent);
    }
    return b;
  }

  /** Builds, tracks and connects a client. */
  BrpcClient connect(BrpcClient.Builder builder) {
    BrpcClient c = track(builder.build());
    c.connect(20, TimeUnit.SECONDS);
    return c;
  }

  BrpcClient connect(String name) {
    return connect(clientBuilder(new Agent(name)));
  }

  BrpcClient track(BrpcClient client) {
    clients.add(client);
    return client;
  }

  static HubGrpc.HubBlockingStub hub(BrpcClient client) {
    return HubGrpc.newBlockingStub(client.channel()).withDeadlineAfter(20, TimeUnit.SECONDS);
  }

  void close() throws InterruptedException {
    for (BrpcClient c : clients) {
      c.shutdownNow();
    }
    for (BrpcServer<?> s : servers) {
      s.shutdownNow();
    }
    for (BrpcClient c : clients) {
      if (!c.awaitTermination(10, TimeUnit.SECONDS)) {
        throw new AssertionError("client did not terminate");
      }
    }
    for (BrpcServer<?> s : servers) {
      if (!s.awaitTermination(10, TimeUnit.SECONDS)) {
        throw new AssertionError("server did not terminate");
      }
    }
  }

  /**
   * The server's service. Its behaviour is chosen by the request's text:
   * {@code name} calls the caller back and answers with its name; {@code count} streams a
   * callback of {@code count} replies; {@code who} answers "id|identity" of the caller;
   * {@code keep} saves the call's Context in {@link #contexts}; {@code callback-status} calls
   * the caller back and answers "OK name" or "CODE: description"; {@code hang-callback} calls
   * the caller's "hang" and answers with the callback's status code; {@code gate} answers once
   * {@link #gate} opens.
   */
  static final class Hub extends HubGrpc.HubImplBase {
    BrpcServer<AgentGrpc.AgentBlockingStub> server;
    final LinkedBlockingQueue<Context> contexts = new LinkedBlockingQueue<>();
    final CountDownLatch gate = new CountDownLatch(1);
    final CountDownLatch gateEntered = new CountDownLatch(1);

    @Override
    public void call(Req request, StreamObserver<Rep> reply) {
      String answer;
      switch (request.getText()) {
        case "name":
          answer = server.clientFromContext().name(Req.getDefaultInstance()).getText();
          break;
        case "count": {
          StringBuilder b = new StringBuilder();
          server.clientFromContext().count(Req.newBuilder().setCount(request.getCount()).build())
              .forEachRemaining(r -> b.append(r.getText()).append(','));
          answer = b.toString();
          break;
        }
        case "who": {
          ConnectedClient<?> c = server.callerFromContext();
          answer = c.id() + "|" + c.identity();
          break;
        }
        case "keep":
          contexts.add(Context.current());
          answer = "kept";
          break;
        case "callback-status":
          try {
            answer = "OK " + server.clientFromContext().name(Req.getDefaultInstance()).getText();
          } catch (StatusRuntimeException e) {
            answer = e.getStatus().getCode() + ": " + e.getStatus().getDescription();
          }
          break;
        case "hang-callback":
          try {
            server.clientFromContext().name(Req.newBuilder().setText("hang").build());
            answer = "OK";
          } catch (StatusRuntimeException e) {
            answer = e.getStatus().getCode().toString();
          }
          break;
        case "gate":
          gateEntered.countDown();
          try {
            gate.await();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          answer = "gated";
          break;
        default:
          reply.onError(Status.INVALID_ARGUMENT.withDescription(request.getText())
              .asRuntimeException());
          return;
      }
      reply.onNext(Rep.newBuilder().setText(answer).build());
      reply.onCompleted();
    }
  }

  /**
   * A client's service: Name answers with the client's name ("hang" never answers and reports
   * its cancellation; "gate" answers once {@link #gate} opens); Count streams "0".."n-1".
   */
  static final class Agent extends AgentGrpc.AgentImplBase {
    final String name;
    final LinkedBlockingQueue<Throwable> cancellations = new LinkedBlockingQueue<>();
    final CountDownLatch hanging = new CountDownLatch(1);
    final CountDownLatch gate = new CountDownLatch(1);
    final CountDownLatch gateEntered = new CountDownLatch(1);

    Agent(String name) {
      this.name = name;
    }

    @Override
    public void name(Req request, StreamObserver<Rep> reply) {
      if (request.getText().equals("hang")) {
        Context.current().addListener(c -> cancellations.add(c.cancellationCause()),
            Runnable::run);
        hanging.countDown();
        return;
      }
      if (request.getText().equals("gate")) {
        gateEntered.countDown();
        try {
          gate.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      reply.onNext(Rep.newBuilder().setText(name).build());
      reply.onCompleted();
    }

    @Override
    public void count(Req request, StreamObserver<Rep> reply) {
      ServerCallStreamObserver<Rep> r = (ServerCallStreamObserver<Rep>) reply;
      for (int i = 0; i < request.getCount() && !r.isCancelled(); i++) {
        r.onNext(Rep.newBuilder().setText(Integer.toString(i)).build());
      }
      r.onCompleted();
    }
  }
}
