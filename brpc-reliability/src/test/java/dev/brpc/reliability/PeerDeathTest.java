package dev.brpc.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.ListenableFuture;
import dev.brpc.BrpcClient;
import dev.brpc.reliability.proto.Msg;
import dev.brpc.fixtures.ThreadLeaks;
import io.grpc.Channel;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A peer goes away with calls in flight: a client closing or dying silently under 100
 * callbacks, and a server restarting under 200 clients.
 */
@ExtendWith(dev.brpc.fixtures.ThreadDumpOnFailure.class)
class PeerDeathTest {
  private Net net;
  private final ExecutorService pool = Executors.newFixedThreadPool(16, r -> {
    Thread t = new Thread(r, "peer-death-test");
    t.setDaemon(true);
    return t;
  });

  @AfterEach
  void tearDown() throws Exception {
    pool.shutdownNow();
    if (net != null) {
      net.close();
    }
  }

  /** Starts 100 callbacks that hang in the client; returns once all 100 are in its handler. */
  private static List<ListenableFuture<Msg>> hundredHangingCallbacks(Channel toClient,
      ProbeService clientProbe) throws InterruptedException {
    List<ListenableFuture<Msg>> calls = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      calls.add(Net.probe(toClient).hang(Msg.getDefaultInstance()));
    }
    assertTrue(clientProbe.hanging.tryAcquire(100, 30, TimeUnit.SECONDS));
    return calls;
  }

  /** Waits for every call to fail; asserts UNAVAILABLE; returns the ms until the last failed. */
  private static long allFailUnavailable(List<ListenableFuture<Msg>> calls, long sinceNanos)
      throws Exception {
    for (ListenableFuture<Msg> call : calls) {
      ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(
          ExecutionException.class, () -> call.get(30, TimeUnit.SECONDS));
      assertEquals(Status.Code.UNAVAILABLE, Status.fromThrowable(e.getCause()).getCode(),
          e.getCause().toString());
    }
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sinceNanos);
  }

  private ThreadLeaks warmUpThenSnapshot() throws Exception {
    net.warmUp();
    return ThreadLeaks.snapshot("peer-death-test");
  }

  @Test
  void clientClosesWith100CallbacksInFlight_allFailUnavailableWithinOneSecond()
      throws Exception {
    net = new Net(60);
    ThreadLeaks threads = warmUpThenSnapshot();
    ProbeService clientProbe = new ProbeService();
    BrpcClient client = net.connect(net.direct(clientProbe));
    List<ListenableFuture<Msg>> calls =
        hundredHangingCallbacks(net.serverSide(client).channel(), clientProbe);

    long t0 = System.nanoTime();
    client.shutdownNow();
    long ms = allFailUnavailable(calls, t0);
    assertTrue(ms <= 1_000, "the last callback failed after " + ms + " ms");
    assertTrue(client.awaitTermination(20, TimeUnit.SECONDS));
    assertNotNull(net.disconnected.poll(20, TimeUnit.SECONDS));
    assertTrue(net.server.clients().isEmpty());
    threads.assertAllEnd(Duration.ofSeconds(30));
    Profile.record("client closes with 100 callbacks in flight", "100/100 failed UNAVAILABLE"
        + " within " + ms + " ms; threads back to the baseline");
  }

  @Test
  void clientDiesSilentlyWith100CallbacksInFlight_allFailUnavailableWithinTheIdleTimeout()
      throws Exception {
    net = new Net(61, b -> b.idleTimeout(3, TimeUnit.SECONDS));
    ThreadLeaks threads = warmUpThenSnapshot();
    ProbeService clientProbe = new ProbeService();
    BrpcClient client = net.connect(net.viaRelay(clientProbe));
    List<ListenableFuture<Msg>> calls =
        hundredHangingCallbacks(net.serverSide(client).channel(), clientProbe);

    // Silence first, so that not even the client's CONNECTION_CLOSE reaches the server.
    net.relay.blackhole(true);
    long t0 = System.nanoTime();
    client.shutdownNow();
    long ms = allFailUnavailable(calls, t0);
    assertTrue(ms <= 4_000, "the last callback failed after " + ms + " ms (idle timeout 3 s)");
    assertTrue(client.awaitTermination(20, TimeUnit.SECONDS));
    assertNotNull(net.disconnected.poll(20, TimeUnit.SECONDS));
    threads.assertAllEnd(Duration.ofSeconds(30));
    Profile.record("client dies silently with 100 callbacks in flight (idle timeout 3 s)",
        "100/100 failed UNAVAILABLE within " + ms + " ms; threads back to the baseline");
  }

  @Test
  //X
  void serverRestartsUnder200Clients_allRegisterAgainWithinTenSeconds() throws Exception {
    net = new Net(62);
    int port = net.server.port();
    int n = Profile.pick(100, 200);
    AtomicInteger failedAttempts = new AtomicInteger();
    AtomicInteger clientsTold = new AtomicInteger();
    java.util.concurrent.atomic.AtomicLong lastFailureAt = new java.util.concurrent.atomic.AtomicLong();
    java.util.concurrent.atomic.AtomicReference<Status> firstFailure =
        new java.util.concurrent.atomic.AtomicReference<>();
    java.util.Queue<Long> clientConnectedAt = new java.util.concurrent.ConcurrentLinkedQueue<>();
    long c0 = System.nanoTime();
    List<Future<BrpcClient>> connecting = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      connecting.add(pool.submit(() -> net.connect(net.direct(new ProbeService())
          .addListener(new BrpcClient.Listener() {
            @Override
            public void connectFailed(Status status) {
              failedAttempts.incrementAndGet();
              firstFailure.compareAndSet(null, status);
              lastFailureAt.set(System.nanoTime());
            }

            @Override
            public void disconnected(UUID id, Status status) {
              clientsTold.incrementAndGet();
            }

            @Override
            public void connected(UUID id) {
              clientConnectedAt.add(System.nanoTime());
            }
          }))));
    }
    for (Future<BrpcClient> c : connecting) {
      c.get(120, TimeUnit.SECONDS);
    }
    assertEquals(n, net.server.clients().size());
    long initialMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - c0);

    long s0 = System.nanoTime();
    net.server.shutdownNow();
    assertTrue(net.server.awaitTermination(60, TimeUnit.SECONDS));
    long downMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - s0);
    for (int i = 0; i < n; i++) {
      assertNotNull(net.disconnected.poll(30, TimeUnit.SECONDS));
    }
    net.connected.clear();
    int told = clientsTold.get();
    int failedWhileDown = failedAttempts.getAndSet(0);
    firstFailure.set(null);
    clientConnectedAt.clear();
    long t0 = System.nanoTime();
    net.startServer(port);
    Set<UUID> back = new HashSet<>();
    long firstMs = -1;
    while (back.size() < n) {
      UUID id = net.connected.poll(30, TimeUnit.SECONDS);
      assertNotNull(id, back.size() + " of " + n + " clients came back; last failure "
          + (lastFailureAt.get() - t0) / 1_000_000 + " ms after the restart; " + failedAttempts.get()
          + " attempts failed since the restart; first failure: " + firstFailure.get());
      if (firstMs < 0) {
        firstMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      }
      back.add(id);
    }
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    long clientFirstMs = clientConnectedAt.stream().mapToLong(x -> (x - t0) / 1_000_000).min()
        .orElse(-1);
    assertTrue(ms <= 10_000, n + " clients took " + ms + " ms to register again (first "
        + firstMs + " ms, first client told it is connected " + clientFirstMs + " ms; " + failedAttempts.get() + " failed attempts; " + told + " clients heard of the"
        + " shutdown, " + failedWhileDown + " attempts failed while it was down;"
        + " shutdown before the restart; connecting them at"
        + " first took " + initialMs + " ms)");
    Profile.record("server restart under " + n + " clients", n + "/" + n + " registered again"
        + " between " + firstMs + " and " + ms + " ms after the restart; " + failedAttempts.get()
        + " failed attempts after the restart; the old server took " + downMs + " ms to shut down"
        + " (connecting them at first: " + initialMs + " ms)");
  }
}
