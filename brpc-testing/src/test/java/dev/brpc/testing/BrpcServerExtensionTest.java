package dev.brpc.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import dev.brpc.BrpcClient;
import dev.brpc.BrpcServer;
import dev.brpc.example.proto.GreetReply;
import dev.brpc.example.proto.GreetRequest;
import dev.brpc.example.proto.GreeterGrpc;
import dev.brpc.example.proto.NameReply;
import dev.brpc.example.proto.NameRequest;
import dev.brpc.example.proto.NamerGrpc;
import dev.brpc.quic.QuicChannelBuilder;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.testkit.engine.EngineTestKit;
import org.junit.platform.testkit.engine.Event;
import org.junit.platform.testkit.engine.Events;

/**
 * {@link BrpcServerExtension} as a user's test meets it, and, through JUnit's test kit, how the
 * tests of classes that use it end: a call left running fails its test, a shared server starts
 * each test with no clients, a registered channel is shut down.
 */
class BrpcServerExtensionTest {
  @RegisterExtension
  final BrpcServerExtension<NamerGrpc.NamerBlockingStub> brpc =
      BrpcServerExtension.create(NamerGrpc::newBlockingStub)
          .configureServer(server -> server.addService(Greeter::new));

  @Test
  void aHandlerCallsItsCallerBack() {
    BrpcClient client = brpc.connectClient(new Namer("Ada"));

    GreetReply reply = GreeterGrpc.newBlockingStub(client.channel())
        .withDeadlineAfter(20, TimeUnit.SECONDS).greet(GreetRequest.getDefaultInstance());

    assertEquals("Hello, Ada", reply.getGreeting());
    assertEquals(List.of(client.id()),
        brpc.server().clients().stream().map(c -> c.id()).collect(Collectors.toList()));
  }

  @Test
  void eachClientIsCalledBackOverItsOwnConnection() {
    BrpcClient ada = brpc.connectClient(new Namer("Ada"));
    BrpcClient bob = brpc.connectClient(b -> b.addService(new Namer("Bob")));

    assertEquals("Hello, Ada", greet(ada));
    assertEquals("Hello, Bob", greet(bob));
    assertNotEquals(ada.id(), bob.id());
  }

  @Test
  void aCallLeftRunning_failsTheTest_andNamesWhatDidNotTerminate() {
    Throwable failure = onlyFailure(run(LeavesACallRunning.class));

    assertInstanceOf(AssertionError.class, failure);
    assertTrue(failure.getMessage().contains("not terminated within 1000 ms")
        && failure.getMessage().contains("BrpcClient " + LeavesACallRunning.clientId),
        failure.getMessage());
    assertTrue(LeavesACallRunning.client.get().isTerminated(),
        "the clean-up shuts a stuck client down with shutdownNow()");
  }

  @Test
  void aSharedServer_startsEachTestWithNoClients() {
    Events tests = run(SharedServer.class);

    assertEquals(2, tests.succeeded().count(), () -> describe(tests));
    assertEquals(1, SharedServer.ports.stream().distinct().count(), "one server for the class");
    assertTrue(SharedServer.server.get().isTerminated(), "stopped after the last test");
  }

  @Test
  void aRegisteredChannel_isShutDownAfterTheTest() {
    Events tests = run(RegistersAChannel.class);

    assertEquals(1, tests.succeeded().count(), () -> describe(tests));
    assertTrue(RegistersAChannel.channel.get().isTerminated());
  }

  private static String greet(BrpcClient client) {
    return GreeterGrpc.newBlockingStub(client.channel()).withDeadlineAfter(20, TimeUnit.SECONDS)
        .greet(GreetRequest.getDefaultInstance()).getGreeting();
  }

  private static Events run(Class<?> testClass) {
    return EngineTestKit.engine("junit-jupiter").selectors(selectClass(testClass)).execute()
        .testEvents();
  }

  private static Throwable onlyFailure(Events tests) {
    List<Event> failed = tests.failed().list();
    assertEquals(1, failed.size(), () -> describe(tests));
    return failed.get(0).getPayload(TestExecutionResult.class).orElseThrow().getThrowable()
        .orElseThrow();
  }

  private static String describe(Events tests) {
    return tests.finished().stream().map(e -> e.getTestDescriptor().getDisplayName() + ": "
        + e.getPayload(TestExecutionResult.class).map(Object::toString).orElse("?"))
        .collect(Collectors.joining("; "));
  }

  /** Run only through the test kit: its one test leaves a streaming call unanswered. */
  static class LeavesACallRunning {
    static final AtomicReference<BrpcClient> client = new AtomicReference<>();
    static volatile Object clientId;

    @RegisterExtension
    final BrpcServerExtension<NamerGrpc.NamerBlockingStub> brpc =
        BrpcServerExtension.create(NamerGrpc::newBlockingStub)
            .configureServer(server -> server.addService(Greeter::new))
            .terminationTimeout(1, TimeUnit.SECONDS);

    @Test
    void leavesACallRunning() throws InterruptedException {
      BrpcClient c = brpc.connectClient(new Namer("Ada"));
      client.set(c);
      clientId = c.id();
      Greeter.hangingCalls = new CountDownLatch(1);
      GreeterGrpc.newStub(c.channel()).greetAll(GreetRequest.getDefaultInstance(),
          new StreamObserver<>() {
            @Override
            public void onNext(GreetReply value) {}

            @Override
            public void onError(Throwable t) {}

            @Override
            public void onCompleted() {}
          });
      assertTrue(Greeter.hangingCalls.await(20, TimeUnit.SECONDS), "the call reached the server");
    }
  }

  /** Run only through the test kit: two tests on one server, in a static field. */
  static class SharedServer {
    static final List<Integer> ports = new java.util.concurrent.CopyOnWriteArrayList<>();
    static final AtomicReference<BrpcServer<?>> server = new AtomicReference<>();

    @RegisterExtension
    static final BrpcServerExtension<NamerGrpc.NamerBlockingStub> brpc =
        BrpcServerExtension.create(NamerGrpc::newBlockingStub)
            .configureServer(s -> s.addService(Greeter::new));

    @Test
    void first() {
      check();
    }

    @Test
    void second() {
      check();
    }

    private static void check() {
      assertEquals(List.of(), brpc.server().clients());
      server.set(brpc.server());
      ports.add(brpc.server().port());
      assertEquals("Hello, Ada", greet(brpc.connectClient(new Namer("Ada"))));
    }
  }

  /** Run only through the test kit: registers a plain grpc channel to the server. */
  static class RegistersAChannel {
    static final AtomicReference<ManagedChannel> channel = new AtomicReference<>();

    @RegisterExtension
    final BrpcServerExtension<NamerGrpc.NamerBlockingStub> brpc =
        BrpcServerExtension.create(NamerGrpc::newBlockingStub);

    @Test
    void registers() {
      ManagedChannel c = brpc.register(QuicChannelBuilder.forAddress("localhost",
          brpc.server().port()).trustCertificate(brpc.certificate().certificate()).build());
      channel.set(c);
      c.getState(true);
    }
  }

  /** Greets the caller by the name it gives when called back; GreetAll never answers. */
  static final class Greeter extends GreeterGrpc.GreeterImplBase {
    static volatile CountDownLatch hangingCalls = new CountDownLatch(1);
    private final BrpcServer<NamerGrpc.NamerBlockingStub> server;

    Greeter(BrpcServer<NamerGrpc.NamerBlockingStub> server) {
      this.server = server;
    }

    @Override
    public void greet(GreetRequest request, StreamObserver<GreetReply> reply) {
      String name = server.clientFromContext().name(NameRequest.getDefaultInstance()).getName();
      reply.onNext(GreetReply.newBuilder().setGreeting("Hello, " + name).build());
      reply.onCompleted();
    }

    @Override
    public void greetAll(GreetRequest request, StreamObserver<GreetReply> reply) {
      hangingCalls.countDown();
    }
  }

  /** Answers with one name. */
  static final class Namer extends NamerGrpc.NamerImplBase {
    private final String name;

    Namer(String name) {
      this.name = name;
    }

    @Override
    public void name(NameRequest request, StreamObserver<NameReply> reply) {
      reply.onNext(NameReply.newBuilder().setName(name).build());
      reply.onCompleted();
    }
  }
}
