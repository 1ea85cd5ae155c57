package dev.brpc.quic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.ListenableFuture;
import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@link PeerGroup}: a round-robin channel over the clients that dialed a server. */
class PeerGroupTest {
  private final PeerGroup group = PeerGroup.create("clients");
  private final LinkedBlockingQueue<PeerConnection> connected = new LinkedBlockingQueue<>();
  private final LinkedBlockingQueue<PeerConnection> disconnected = new LinkedBlockingQueue<>();
  private final List<Server> callbackServers = new ArrayList<>();
  private final List<ManagedChannel> clients = new ArrayList<>();
  private Server server;

  @BeforeEach
  void setUp() throws Exception {
    server = QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .useTransportSecurity(QuicPair.CERT)
        .connectionListener(new QuicConnectionListener() {
          @Override
          public void connected(PeerConnection connection) {
            group.add(connection);
            connected.add(connection);
          }

          @Override
          public void disconnected(PeerConnection connection, Status status) {
            disconnected.add(connection);
          }
        })
        .build().start();
  }

  @AfterEach
  void tearDown() throws Exception {
    group.shutdownNow();
    for (ManagedChannel c : clients) {
      c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    for (Server s : callbackServers) {
      s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
  }

  /** Connects a client whose Echo.Unary answers with {@code name}. */
  private ManagedChannel connect(String name) throws Exception {
    Server callbacks = QuicServerBuilder.forCallbacks()
        .addService(new EchoGrpc.EchoImplBase() {
          @Override
          public void unary(Msg request, StreamObserver<Msg> response) {
            response.onNext(Msg.newBuilder().setText(name).build());
            response.onCompleted();
          }
        })
        .build().start();
    callbackServers.add(callbacks);
    ManagedChannel channel = QuicChannelBuilder.forAddress("localhost", server.getPort())
        .trustCertificate(QuicPair.CERT.certificate())
        .callbackServer(callbacks)
        .build();
    clients.add(channel);
    channel.getState(true);
    assertTrue(connected.poll(20, TimeUnit.SECONDS) != null, name + " did not connect");
    return channel;
  }

  private String call() {
    return EchoGrpc.newBlockingStub(group.channel()).withDeadlineAfter(10, TimeUnit.SECONDS)
        .unary(Msg.getDefaultInstance()).getText();
  }

  @Test
  void emptyGroup_failsUnavailable_andIsNotReady() throws Exception {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, this::call);
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    assertFalse(group.isReady());
    assertFalse(group.awaitReady(50, TimeUnit.MILLISECONDS));
  }

  @Test
  void waitForReadyCall_madeBeforeAnyClient_goesToTheFirstThatJoins() throws Exception {
    ListenableFuture<Msg> pending = EchoGrpc.newFutureStub(group.channel())
        .withWaitForReady().withDeadlineAfter(20, TimeUnit.SECONDS)
        .unary(Msg.getDefaultInstance());
    assertFalse(pending.isDone());
    connect("first");
    assertEquals("first", pending.get(20, TimeUnit.SECONDS).getText());
  }

  @Test
  void calls_roundRobinOverMembers_andSkipThoseThatLeft() throws Exception {
    connect("a");
    ManagedChannel b = connect("b");
    connect("c");
    assertTrue(group.awaitReady(10, TimeUnit.SECONDS));
    assertEquals(3, group.members().size());
    // The picker includes a member once its transport is ready: within a few calls, all are.
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < 60 && seen.size() < 3; i++) {
      seen.add(call());
    }
    assertEquals(Set.of("a", "b", "c"), seen);

    // A member whose connection closes leaves the group by itself.
    b.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    assertTrue(disconnected.poll(10, TimeUnit.SECONDS) != null);
    assertEquals(2, group.members().size());
    for (int i = 0; i < 20; i++) {
      String got = call();
      assertTrue(got.equals("a") || got.equals("c"), "call reached " + got);
    }
  }
}
