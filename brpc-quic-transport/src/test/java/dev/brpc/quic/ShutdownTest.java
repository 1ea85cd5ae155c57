package dev.brpc.quic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Graceful and hard shutdown of the callee, in both directions: the server shutting down
 * (reverse=false) and the client's callback server shutting down (reverse=true).
 */
class ShutdownTest {
  private QuicPair pair;

  @BeforeEach
  void setUp() throws Exception {
    pair = new QuicPair();
  }

  @AfterEach
  void tearDown() throws Exception {
    pair.close();
  }

  private Server callee(boolean reverse) {
    return reverse ? pair.callbacks : pair.server;
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void shutdown_inFlightCallFinishes_newCallsFailUnavailable(boolean reverse) throws Exception {
    EchoGrpc.EchoStub stub = EchoGrpc.newStub(pair.channel(reverse));
    CompletableFuture<Msg> inFlight = unary(stub, "gate");
    EchoService echo = pair.callee(reverse);
    assertTrue(echo.gateEntered.await(10, TimeUnit.SECONDS));

    callee(reverse).shutdown();
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> EchoGrpc.newBlockingStub(pair.channel(reverse)).withDeadlineAfter(10, TimeUnit.SECONDS)
            .unary(Msg.newBuilder().setText("new").build()));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());

    echo.gate.countDown();
    assertEquals("after gate", inFlight.get(10, TimeUnit.SECONDS).getText());
    assertTrue(callee(reverse).awaitTermination(10, TimeUnit.SECONDS));
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void shutdownNow_failsInFlightCalls(boolean reverse) throws Exception {
    EchoGrpc.EchoStub stub = EchoGrpc.newStub(pair.channel(reverse));
    CompletableFuture<Msg> inFlight = unary(stub, "hang");
    assertTrue(pair.callee(reverse).hanging.await(10, TimeUnit.SECONDS));

    callee(reverse).shutdownNow();
    Throwable t = assertThrows(Exception.class, () -> inFlight.get(5, TimeUnit.SECONDS)).getCause();
    Status.Code code = Status.fromThrowable(t).getCode();
    assertTrue(code == Status.Code.UNAVAILABLE || code == Status.Code.CANCELLED,
        "in-flight call ended with " + code);
    assertNotNull(pair.callee(reverse).cancellations.poll(5, TimeUnit.SECONDS));
    assertTrue(callee(reverse).awaitTermination(10, TimeUnit.SECONDS));
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void peerClosesConnection_inFlightCallsFailUnavailablePromptly(boolean reverse)
      throws Exception {
    // The caller's peer goes away with a clean close: forward, the server process stops;
    // reverse, the client's channel is shut down under a callback.
    EchoGrpc.EchoStub stub = EchoGrpc.newStub(pair.channel(reverse));
    CompletableFuture<Msg> inFlight = unary(stub, "hang");
    assertTrue(pair.callee(reverse).hanging.await(10, TimeUnit.SECONDS));
    if (reverse) {
      pair.channel.shutdownNow();
    } else {
      pair.server.shutdownNow();
    }
    Throwable t = assertThrows(Exception.class, () -> inFlight.get(2, TimeUnit.SECONDS)).getCause();
    assertEquals(Status.Code.UNAVAILABLE, Status.fromThrowable(t).getCode(), String.valueOf(Status.fromThrowable(t)));
  }

  private static CompletableFuture<Msg> unary(EchoGrpc.EchoStub stub, String text) {
    CompletableFuture<Msg> f = new CompletableFuture<>();
    stub.unary(Msg.newBuilder().setText(text).build(),
        CallSemanticsTest.observer(f, new ArrayList<>()));
    return f;
  }
}
