package dev.brpc.quic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Connection-level behaviour: admission, identity, stream limits, idle timeout. */
class ConnectionTest {
  private static final Metadata.Key<String> TOKEN =
      Metadata.Key.of("token", Metadata.ASCII_STRING_MARSHALLER);
  private QuicPair pair;

  @AfterEach
  void tearDown() throws Exception {
    if (pair != null) {
      pair.close();
    }
  }

  private static ConnectHandler tokenCheck() {
    return (metadata, remote) -> {
      if (!"secret".equals(metadata.get(TOKEN))) {
        throw Status.UNAUTHENTICATED.withDescription("bad token").asException();
      }
      return ConnectHandler.ConnectResult.accept().withIdentity("user-1");
    };
  }

  @Test
  void connectHandler_refusesClient_callsFailWithItsStatus() throws Exception {
    Metadata wrong = new Metadata();
    wrong.put(TOKEN, "wrong");
    java.util.concurrent.LinkedBlockingQueue<Status> failures =
        new java.util.concurrent.LinkedBlockingQueue<>();
    pair = new QuicPair(s -> s.connectHandler(tokenCheck()), c -> c.connectMetadata(wrong)
        .connectionListener(new QuicConnectionListener() {
          @Override
          public void connectFailed(java.net.SocketAddress server, Status status) {
            failures.add(status);
          }
        }));
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> EchoGrpc.newBlockingStub(pair.forward()).unary(Msg.getDefaultInstance()));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    assertEquals("bad token", e.getStatus().getDescription());
    assertNull(pair.connected.poll(), "a refused client was reported connected");
    // The channel's listener hears the refusal too (BrpcClient.connect() reports it from here).
    Status failure = failures.poll(10, java.util.concurrent.TimeUnit.SECONDS);
    assertEquals(Status.Code.UNAUTHENTICATED, failure.getCode());
    assertEquals("bad token", failure.getDescription());
  }

  @Test
  void connectHandler_identityAndConnectionIdVisibleToHandlers() throws Exception {
    Metadata token = new Metadata();
    token.put(TOKEN, "secret");
    AtomicReference<Object> identity = new AtomicReference<>();
    AtomicReference<String> connectionId = new AtomicReference<>();
    ServerInterceptor capture = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata h,
          ServerCallHandler<Q, R> next) {
        if (identity.get() == null) {
          identity.set(call.getAttributes().get(QuicAttributes.PEER_IDENTITY));
          connectionId.set(call.getAttributes().get(QuicAttributes.CONNECTION_ID));
        }
        return next.startCall(call, h);
      }
    };
    pair = new QuicPair(s -> s.connectHandler(tokenCheck()), c -> c.connectMetadata(token),
        capture);
    EchoGrpc.newBlockingStub(pair.forward()).unary(Msg.getDefaultInstance());
    assertEquals("user-1", identity.get());
    assertEquals(pair.peer().id(), connectionId.get());
    assertEquals("secret", pair.peer().peerMetadata().get(TOKEN));
  }

  @Test
  void callsBeyondTheStreamLimit_waitForAStream_andAllComplete() throws Exception {
    pair = new QuicPair(s -> s.maxConcurrentCallsPerConnection(2), c -> c);
    EchoGrpc.EchoStub stub = EchoGrpc.newStub(pair.forward());
    List<CompletableFuture<Msg>> calls = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      CompletableFuture<Msg> f = new CompletableFuture<>();
      stub.unary(Msg.newBuilder().setText("gate").build(),
          CallSemanticsTest.observer(f, new ArrayList<>()));
      calls.add(f);
    }
    assertTrue(pair.serverEcho.gateEntered.await(10, TimeUnit.SECONDS));
    pair.serverEcho.gate.countDown();
    for (CompletableFuture<Msg> f : calls) {
      assertEquals("after gate", f.get(20, TimeUnit.SECONDS).getText());
    }
  }

  @Test
  void quietConnection_staysUpPastTheIdleTimeout() throws Exception {
    pair = new QuicPair(s -> s.quicIdleTimeout(1, TimeUnit.SECONDS),
        c -> c.quicIdleTimeout(1, TimeUnit.SECONDS));
    EchoGrpc.newBlockingStub(pair.forward()).unary(Msg.getDefaultInstance());
    PeerConnection peer = pair.peer();
    // Three idle timeouts without a call: the dialer's pings must keep the connection.
    assertNull(pair.disconnected.poll(3, TimeUnit.SECONDS), "the quiet connection was closed");
    assertTrue(peer.isOpen());
    EchoGrpc.newBlockingStub(pair.reverse()).unary(Msg.getDefaultInstance());
  }

  @Test
  void callbackServer_rejectsConnectionSettingsThatBelongToTheChannel() {
    QuicServerBuilder b = QuicServerBuilder.forCallbacks();
    assertThrows(UnsupportedOperationException.class,
        () -> b.quicIdleTimeout(5, TimeUnit.SECONDS));
    assertThrows(UnsupportedOperationException.class,
        () -> b.keepAliveTime(5, TimeUnit.SECONDS));
    assertThrows(UnsupportedOperationException.class,
        () -> b.maxConcurrentCallsPerConnection(10));
    assertThrows(UnsupportedOperationException.class,
        () -> b.useTransportSecurity(QuicPair.CERT));
  }
}
