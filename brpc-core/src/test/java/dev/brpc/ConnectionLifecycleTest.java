package dev.brpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.ListenableFuture;
import dev.brpc.test.AgentGrpc;
import dev.brpc.test.HubGrpc;
import dev.brpc.test.Rep;
import dev.brpc.test.Req;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.HashSet;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Authentication, routing, reconnection, keepalive and shutdown in both directions. */
@org.junit.jupiter.api.extension.ExtendWith(dev.brpc.fixtures.ThreadDumpOnFailure.class)
class ConnectionLifecycleTest {
  private static final Metadata.Key<String> TOKEN =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private Fixture f;

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  private static Req text(String text) {
    return Req.newBuilder().setText(text).build();
  }

  private static Metadata token(String value) {
    Metadata m = new Metadata();
    m.put(TOKEN, value);
    return m;
  }

  private static Authenticator tokens() {
    return (metadata, address) -> {
      String t = metadata.get(TOKEN);
      if (t == null || !t.startsWith("Bearer user-")) {
        throw Status.UNAUTHENTICATED.withDescription("token not recognised").asException();
      }
      return t.substring("Bearer ".length());
    };
  }

  @Test
  void authenticator_rejectsClient_connectFailsWithItsStatusAndDescription() throws Exception {
    f = new Fixture(b -> b.authenticator(tokens()));
    BrpcClient c = f.track(f.clientBuilder(new Fixture.Agent("x"))
        .connectMetadata(token("Bearer forged")).build());
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, c::connect);
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    assertEquals("token not recognised", e.getStatus().getDescription());
    // connect(timeout) does not wait through a refusal either.
    e = assertThrows(StatusRuntimeException.class, () -> c.connect(20, TimeUnit.SECONDS));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    assertTrue(f.server.clients().isEmpty());
  }

  @Test
  void authenticator_identity_isVisibleToHandlersAndInTheRegistry() throws Exception {
    f = new Fixture(b -> b.authenticator(tokens()));
    BrpcClient c = f.connect(f.clientBuilder(new Fixture.Agent("ada"))
        .connectMetadata(token("Bearer user-ada")));
    assertEquals(c.id() + "|user-ada", Fixture.hub(c).call(text("who")).getText());
    assertEquals("user-ada", f.server.client(c.id()).orElseThrow().identity());
    assertEquals("Bearer user-ada",
        f.server.client(c.id()).orElseThrow().connectMetadata().get(TOKEN));
  }

  @Test
  void allClients_beforeAnyClient_isNotReady_andWaitForReadyCallsWait() throws Exception {
    f = new Fixture();
    ClientsChannel<AgentGrpc.AgentBlockingStub> all = f.server.allClients();
    assertFalse(all.isReady());
    assertFalse(all.awaitReady(100, TimeUnit.MILLISECONDS));
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> all.stub().name(Req.getDefaultInstance()));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    ListenableFuture<Rep> waiting = AgentGrpc.newFutureStub(all).withWaitForReady()
        .withDeadlineAfter(20, TimeUnit.SECONDS).name(Req.getDefaultInstance());
    f.connect("first");
    assertEquals("first", waiting.get(20, TimeUnit.SECONDS).getText());
    assertTrue(all.awaitReady(10, TimeUnit.SECONDS));
  }

  @Test
  void routing_roundRobinsOverAllClients_andOverAnAffinityGroup() throws Exception {
    f = new Fixture(b -> b.affinity(c -> c.connectMetadata().get(TOKEN)));
    f.connect(f.clientBuilder(new Fixture.Agent("eu-1")).connectMetadata(token("eu")));
    f.connect(f.clientBuilder(new Fixture.Agent("eu-2")).connectMetadata(token("eu")));
    f.connect(f.clientBuilder(new Fixture.Agent("us-1")).connectMetadata(token("us")));
    assertTrue(f.server.allClients().awaitReady(10, TimeUnit.SECONDS));
    assertEquals(Set.of("eu-1", "eu-2", "us-1"), names(f.server.allClients(), 3));
    assertEquals(Set.of("eu-1", "eu-2"), names(f.server.clientsWithKey("eu"), 2));
    assertEquals(Set.of("us-1"), names(f.server.clientsWithKey("us"), 1));
    assertEquals("eu", f.server.clients().stream()
        .filter(c -> c.stub().name(Req.getDefaultInstance()).getText().equals("eu-2"))
        .findFirst().orElseThrow().affinityKey());
  }

  /** Calls until {@code expected} distinct clients answered (bounded), and returns who did. */
  private static Set<String> names(ClientsChannel<AgentGrpc.AgentBlockingStub> ch, int expected)
      throws InterruptedException {
    assertTrue(ch.awaitReady(10, TimeUnit.SECONDS));
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < 50 && seen.size() < expected; i++) {
      seen.add(ch.stub().withDeadlineAfter(10, TimeUnit.SECONDS).name(Req.getDefaultInstance())
          .getText());
    }
    for (int i = 0; i < 10; i++) {
      seen.add(ch.stub().withDeadlineAfter(10, TimeUnit.SECONDS).name(Req.getDefaultInstance())
          .getText());
    }
    return seen;
  }

  @Test
  void client_reconnectsAfterTheServerRestartsOnTheSamePort_withANewId() throws Exception {
    f = new Fixture();
    int port = f.server.port();
    LinkedBlockingQueue<UUID> connected = new LinkedBlockingQueue<>();
    LinkedBlockingQueue<Status> disconnected = new LinkedBlockingQueue<>();
    BrpcClient c = f.connect(f.clientBuilder(new Fixture.Agent("phoenix"))
        .addListener(new BrpcClient.Listener() {
          @Override
          public void connected(UUID id) {
            connected.add(id);
          }

          @Override
          public void disconnected(UUID id, Status status) {
            disconnected.add(status);
          }
        }));
    UUID first = connected.poll(10, TimeUnit.SECONDS);
    assertEquals(first, c.id());

    f.server.shutdownNow();
    assertTrue(f.server.awaitTermination(10, TimeUnit.SECONDS));
    assertNotNull(disconnected.poll(10, TimeUnit.SECONDS));
    // While disconnected, a call fails fast, as on any grpc channel.
    BrpcServer<AgentGrpc.AgentBlockingStub> restarted = f.startServer(port, b -> b);

    // grpc's backoff starts at 1 s with jitter and grows 1.6x: well within 30 s.
    UUID second = connected.poll(30, TimeUnit.SECONDS);
    assertNotNull(second, "client did not reconnect");
    assertNotEquals(first, second);
    assertEquals(second, c.id());
    assertTrue(c.isConnected());
    // Its services are served again, on the new connection.
    assertEquals("phoenix", restarted.client(second).orElseThrow().stub()
        .name(Req.getDefaultInstance()).getText());
    f.hub.server = restarted;
    assertEquals("phoenix", Fixture.hub(c).call(text("name")).getText());
  }

  @Test
  void callsWhileDisconnected_failFast_orWaitWhenWaitForReady() throws Exception {
    f = new Fixture();
    int port = f.server.port();
    BrpcClient c = f.connect("waiter");
    f.server.shutdownNow();
    assertTrue(f.server.awaitTermination(10, TimeUnit.SECONDS));
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> Fixture.hub(c).call(text("who")));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    ListenableFuture<Rep> waiting = HubGrpc.newFutureStub(c.channel()).withWaitForReady()
        .withDeadlineAfter(30, TimeUnit.SECONDS).call(text("who"));
    BrpcServer<AgentGrpc.AgentBlockingStub> restarted = f.startServer(port, b -> b);
    f.hub.server = restarted;
    assertTrue(waiting.get(30, TimeUnit.SECONDS).getText().startsWith(c.id().toString()));
  }

  @Test
  void quietConnection_outlivesSeveralIdleTimeouts() throws Exception {
    f = new Fixture(b -> b.idleTimeout(1, TimeUnit.SECONDS));
    LinkedBlockingQueue<Status> disconnected = new LinkedBlockingQueue<>();
    BrpcClient c = f.connect(f.clientBuilder(new Fixture.Agent("quiet"))
        .idleTimeout(1, TimeUnit.SECONDS)
        .addListener(new BrpcClient.Listener() {
          @Override
          public void disconnected(UUID id, Status status) {
            disconnected.add(status);
          }
        }));
    UUID id = c.id();
    // Nothing is sent for three idle timeouts: the connection must still be the same one.
    assertNull(disconnected.poll(3500, TimeUnit.MILLISECONDS));
    assertEquals(id, c.id());
    assertEquals("quiet", f.server.client(id).orElseThrow().stub()
        .name(Req.getDefaultInstance()).getText());
  }

  @Test
  void serverShutdown_letsCallsInBothDirectionsFinish_andRefusesNewOnes() throws Exception {
    f = new Fixture();
    Fixture.Agent agent = new Fixture.Agent("drainer");
    BrpcClient c = f.connect(f.clientBuilder(agent));
    ConnectedClient<AgentGrpc.AgentBlockingStub> client = f.server.client(c.id()).orElseThrow();
    ListenableFuture<Rep> inbound = HubGrpc.newFutureStub(c.channel()).call(text("gate"));
    ListenableFuture<Rep> callback = AgentGrpc.newFutureStub(client.channel()).name(text("gate"));
    assertTrue(f.hub.gateEntered.await(10, TimeUnit.SECONDS));
    assertTrue(agent.gateEntered.await(10, TimeUnit.SECONDS));

    f.server.shutdown();
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> client.stub().name(Req.getDefaultInstance()));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    e = assertThrows(StatusRuntimeException.class,
        () -> f.server.allClients().stub().name(Req.getDefaultInstance()));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    e = assertThrows(StatusRuntimeException.class, () -> Fixture.hub(c).call(text("who")));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    assertFalse(f.server.isTerminated());

    f.hub.gate.countDown();
    agent.gate.countDown();
    assertEquals("gated", inbound.get(10, TimeUnit.SECONDS).getText());
    assertEquals("drainer", callback.get(10, TimeUnit.SECONDS).getText());
    assertTrue(f.server.awaitTermination(10, TimeUnit.SECONDS));
  }

  @Test
  void serverShutdownNow_cancelsCallsInBothDirections() throws Exception {
    f = new Fixture();
    Fixture.Agent agent = new Fixture.Agent("victim");
    BrpcClient c = f.connect(f.clientBuilder(agent));
    ListenableFuture<Rep> inbound = HubGrpc.newFutureStub(c.channel()).call(text("gate"));
    ListenableFuture<Rep> callback = AgentGrpc.newFutureStub(
        f.server.client(c.id()).orElseThrow().channel()).name(text("hang"));
    assertTrue(f.hub.gateEntered.await(10, TimeUnit.SECONDS));
    assertTrue(agent.hanging.await(10, TimeUnit.SECONDS));
    f.server.shutdownNow();
    assertThrows(Exception.class, () -> inbound.get(5, TimeUnit.SECONDS));
    assertThrows(Exception.class, () -> callback.get(5, TimeUnit.SECONDS));
    assertNotNull(agent.cancellations.poll(5, TimeUnit.SECONDS), "callback not cancelled");
    f.hub.gate.countDown();
    assertTrue(f.server.awaitTermination(10, TimeUnit.SECONDS));
  }

  @Test
  void clientShutdown_letsCallsInBothDirectionsFinish_andRefusesNewOnes() throws Exception {
    f = new Fixture();
    Fixture.Agent agent = new Fixture.Agent("leaving");
    BrpcClient c = f.connect(f.clientBuilder(agent));
    ConnectedClient<AgentGrpc.AgentBlockingStub> client = f.server.client(c.id()).orElseThrow();
    ListenableFuture<Rep> outbound = HubGrpc.newFutureStub(c.channel()).call(text("gate"));
    ListenableFuture<Rep> callback = AgentGrpc.newFutureStub(client.channel()).name(text("gate"));
    assertTrue(f.hub.gateEntered.await(10, TimeUnit.SECONDS));
    assertTrue(agent.gateEntered.await(10, TimeUnit.SECONDS));

    c.shutdown();
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> Fixture.hub(c).call(text("who")));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    e = assertThrows(StatusRuntimeException.class,
        () -> client.stub().name(Req.getDefaultInstance()));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());

    f.hub.gate.countDown();
    agent.gate.countDown();
    assertEquals("gated", outbound.get(10, TimeUnit.SECONDS).getText());
    assertEquals("leaving", callback.get(10, TimeUnit.SECONDS).getText());
    assertTrue(c.awaitTermination(10, TimeUnit.SECONDS));
  }

  @Test
  void clientShutdownNow_cancelsCallsInBothDirections() throws Exception {
    f = new Fixture();
    Fixture.Agent agent = new Fixture.Agent("abrupt");
    BrpcClient c = f.connect(f.clientBuilder(agent));
    ListenableFuture<Rep> outbound = HubGrpc.newFutureStub(c.channel()).call(text("gate"));
    ListenableFuture<Rep> callback = AgentGrpc.newFutureStub(
        f.server.client(c.id()).orElseThrow().channel()).name(text("hang"));
    assertTrue(f.hub.gateEntered.await(10, TimeUnit.SECONDS));
    assertTrue(agent.hanging.await(10, TimeUnit.SECONDS));
    c.shutdownNow();
    Throwable t = assertThrows(Exception.class, () -> outbound.get(5, TimeUnit.SECONDS))
        .getCause();
    assertEquals(Status.Code.UNAVAILABLE, Status.fromThrowable(t).getCode(), t.toString());
    t = assertThrows(Exception.class, () -> callback.get(5, TimeUnit.SECONDS)).getCause();
    assertEquals(Status.Code.UNAVAILABLE, Status.fromThrowable(t).getCode(), t.toString());
    assertNotNull(agent.cancellations.poll(5, TimeUnit.SECONDS), "callback handler not cancelled");
    f.hub.gate.countDown();
    assertTrue(c.awaitTermination(10, TimeUnit.SECONDS));
  }
}
