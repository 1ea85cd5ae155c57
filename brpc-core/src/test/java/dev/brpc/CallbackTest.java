package dev.brpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.ListenableFuture;
import dev.brpc.test.AgentGrpc;
import dev.brpc.test.HubGrpc;
import dev.brpc.test.Rep;
import dev.brpc.test.Req;
import io.grpc.Context;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Callbacks: from a handler, from outside any request, streaming; identity cannot be forged. */
@org.junit.jupiter.api.extension.ExtendWith(dev.brpc.fixtures.ThreadDumpOnFailure.class)
class CallbackTest {
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

  @Test
  void clientFromContext_inAHandler_callsTheClientThatMadeTheCall() throws Exception {
    f = new Fixture();
    BrpcClient ada = f.connect("ada");
    BrpcClient bob = f.connect("bob");
    for (int i = 0; i < 3; i++) {
      assertEquals("ada", Fixture.hub(ada).call(text("name")).getText());
      assertEquals("bob", Fixture.hub(bob).call(text("name")).getText());
    }
    assertEquals(ada.id() + "|null", Fixture.hub(ada).call(text("who")).getText());
  }

  @Test
  void clientThatKnowsAnotherClientsId_cannotReceiveOrRedirectItsCallbacks() throws Exception {
    f = new Fixture();
    BrpcClient victim = f.connect("victim");
    UUID stolen = victim.id();
    // The thief presents the stolen id everywhere a client can put something: its connect
    // metadata and the headers of its calls.
    Metadata forged = new Metadata();
    forged.put(ClientRegistry.CLIENT_ID_HEADER, stolen.toString());
    BrpcClient thief = f.connect(f.clientBuilder(new Fixture.Agent("thief"))
        .connectMetadata(forged));
    assertNotEquals(stolen, thief.id());
    HubGrpc.HubBlockingStub forging = Fixture.hub(thief)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(forged));
    assertEquals("thief", forging.call(text("name")).getText());
    assertEquals(thief.id() + "|null", forging.call(text("who")).getText());
    // The victim's callbacks still reach the victim alone.
    assertEquals("victim", f.server.client(stolen).orElseThrow().stub()
        .name(Req.getDefaultInstance()).getText());
  }

  @Test
  void streamingCallback_deliversEveryMessage() throws Exception {
    f = new Fixture();
    BrpcClient c = f.connect("streamer");
    assertEquals("0,1,2,3,4,", Fixture.hub(c).call(
        Req.newBuilder().setText("count").setCount(5).build()).getText());
    String many = Fixture.hub(c).call(Req.newBuilder().setText("count").setCount(2000).build())
        .getText();
    assertEquals(2000, many.split(",").length);
  }

  @Test
  void registry_callsClientsOutsideAnyRequest() throws Exception {
    f = new Fixture();
    BrpcClient ada = f.connect("ada");
    BrpcClient bob = f.connect("bob");
    Set<UUID> ids = f.server.clients().stream().map(ConnectedClient::id)
        .collect(Collectors.toSet());
    assertEquals(Set.of(ada.id(), bob.id()), ids);
    // From a thread that serves no request, as a scheduled task would.
    for (ConnectedClient<AgentGrpc.AgentBlockingStub> client : f.server.clients()) {
      String expected = client.id().equals(ada.id()) ? "ada" : "bob";
      assertEquals(expected, client.stub().name(Req.getDefaultInstance()).getText());
      assertEquals(expected, AgentGrpc.newBlockingStub(client.channel())
          .name(Req.getDefaultInstance()).getText());
      assertTrue(client.isConnected());
      assertNotNull(client.connectedAt());
      assertNotNull(client.remoteAddress());
    }
  }

  @Test
  void clientFromContext_outsideACall_failsFailedPrecondition() throws Exception {
    f = new Fixture();
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> f.server.clientFromContext());
    assertEquals(Status.Code.FAILED_PRECONDITION, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains("call clientFromContext() inside a"
        + " handler"), e.getStatus().toString());
    e = assertThrows(StatusRuntimeException.class,
        () -> f.server.callerFromContext(Context.ROOT));
    assertEquals(Status.Code.FAILED_PRECONDITION, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains("call callerFromContext() inside a"
        + " handler"), e.getStatus().toString()); // names the method called (issue 20)
  }

  @Test
  void clientFromContext_afterTheClientDisconnects_failsUnavailableNamingIt() throws Exception {
    f = new Fixture();
    BrpcClient c = f.connect("leaver");
    UUID id = c.id();
    assertEquals("kept", Fixture.hub(c).call(text("keep")).getText());
    Context kept = f.hub.contexts.poll(10, TimeUnit.SECONDS);
    c.close();
    assertEquals(id, f.disconnected.poll(10, TimeUnit.SECONDS));
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> f.server.clientFromContext(kept));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains(id.toString()), e.getStatus().toString());
    assertTrue(f.server.client(id).isEmpty());
  }

  @Test
  void clientWithoutServices_answersCallbacksUnimplemented() throws Exception {
    f = new Fixture();
    BrpcClient c = f.connect(f.clientBuilder(null));
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> f.server.client(c.id()).orElseThrow().stub().name(Req.getDefaultInstance()));
    assertEquals(Status.Code.UNIMPLEMENTED, e.getStatus().getCode());
  }

  @Test
  void callbacksInFlight_whenTheClientCloses_failUnavailableWithinASecond() throws Exception {
    f = new Fixture();
    Fixture.Agent agent = new Fixture.Agent("closer");
    BrpcClient c = f.connect(f.clientBuilder(agent));
    AgentGrpc.AgentFutureStub stub = AgentGrpc.newFutureStub(
        f.server.client(c.id()).orElseThrow().channel());
    java.util.List<ListenableFuture<Rep>> calls = new java.util.ArrayList<>();
    for (int i = 0; i < 20; i++) {
      calls.add(stub.name(text("hang")));
    }
    assertTrue(agent.hanging.await(10, TimeUnit.SECONDS));
    c.shutdownNow();
    long start = System.nanoTime();
    for (ListenableFuture<Rep> call : calls) {
      Throwable t = assertThrows(Exception.class, () -> call.get(5, TimeUnit.SECONDS)).getCause();
      assertEquals(Status.Code.UNAVAILABLE, Status.fromThrowable(t).getCode(), t.toString());
    }
    long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertTrue(millis < 1000, "callbacks failed after " + millis + " ms");
  }

  @Test
  void callbackDeadlineAndCancellation_propagateFromTheClientsCall() throws Exception {
    f = new Fixture();
    Fixture.Agent agent = new Fixture.Agent("patient");
    BrpcClient c = f.connect(f.clientBuilder(agent));
    // The client's deadline becomes the callback's deadline.
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> HubGrpc.newBlockingStub(c.channel()).withDeadlineAfter(300, TimeUnit.MILLISECONDS)
            .call(text("hang-callback")));
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
    assertNotNull(agent.cancellations.poll(5, TimeUnit.SECONDS), "callback not cancelled");

    // Cancelling the client's call cancels the callback.
    Fixture.Agent agent2 = new Fixture.Agent("patient-2");
    BrpcClient c2 = f.connect(f.clientBuilder(agent2));
    Context.CancellableContext ctx = Context.current().withCancellation();
    ListenableFuture<Rep> call = ctx.call(() -> HubGrpc.newFutureStub(c2.channel())
        .call(text("hang-callback")));
    assertTrue(agent2.hanging.await(10, TimeUnit.SECONDS), "callback never arrived");
    ctx.cancel(new RuntimeException("user gave up"));
    assertNotNull(agent2.cancellations.poll(5, TimeUnit.SECONDS), "callback not cancelled");
    assertThrows(Exception.class, () -> call.get(5, TimeUnit.SECONDS));
  }
}
