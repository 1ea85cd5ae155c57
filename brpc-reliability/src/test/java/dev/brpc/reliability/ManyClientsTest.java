package dev.brpc.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import dev.brpc.BrpcClient;
import dev.brpc.ConnectedClient;
import dev.brpc.reliability.proto.Msg;
import dev.brpc.reliability.proto.ProbeGrpc;
import dev.brpc.fixtures.Heap;
import dev.brpc.fixtures.ThreadLeaks;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Many clients on one server, each called back once with every callback in flight at once:
 * none is lost, the slowest callback and the threads and heap each connected client costs are
 * recorded. Server and
 * clients share this JVM, so the figures per client cover both ends of its connection.
 */
@ExtendWith(dev.brpc.fixtures.ThreadDumpOnFailure.class)
class ManyClientsTest {
  private Net net;
  private final ExecutorService pool = Executors.newFixedThreadPool(16, r -> {
    Thread t = new Thread(r, "many-clients-test");
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

  /**
   * One round: {@code n} clients connect, each is called back once with every callback in
   * flight at once, and they leave. The full profile runs the 1,000 clients ten rounds
   * in a row (issue 13: the silent stall showed as one callback in 300 failing in 1 run of 7),
   * and asserts the slowest callback; the default run does one round of 200 and records it.
   */
  @Test
  void manyClients_eachCalledBackOnce_noneLost_costPerClientRecorded() throws Exception {
    net = new Net(80);
    int n = Profile.pick(200, 1_000);
    int rounds = Profile.pick(1, 10);
    net.warmUp();
    List<String> figures = new ArrayList<>();
    long slowestOverall = 0;
    for (int round = 1; round <= rounds; round++) {
      long slowest = round(n, figures);
      slowestOverall = Math.max(slowestOverall, slowest);
      if (Profile.FULL) {
        // The bound; on the default run's busy CI machine it is only recorded.
        assertTrue(slowest < 5_000, "round " + round + ": a callback took " + slowest + " ms");
      }
    }
    Profile.record(n + " clients, each called back once, " + rounds + " round(s)", "0 lost;"
        + " slowest callback " + slowestOverall + " ms; round 1 " + figures.get(0)
        + (rounds > 1 ? "; rounds 2.. connect/slowest: " + String.join(", ",
            figures.subList(1, rounds)) : ""));
  }

  /** Runs one round and returns the slowest callback's latency in milliseconds. */
  private long round(int n, List<String> figures) throws Exception {
    ThreadLeaks threads = ThreadLeaks.snapshot("many-clients-test");
    int threadsBefore = Thread.activeCount();
    long heapBefore = Heap.live();

    long start = System.nanoTime();
    List<Future<BrpcClient>> connecting = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      connecting.add(pool.submit(() -> net.connect(net.direct(new ProbeService()))));
    }
    List<BrpcClient> clients = new ArrayList<>();
    for (Future<BrpcClient> c : connecting) {
      clients.add(c.get(300, TimeUnit.SECONDS));
    }
    long connectMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertEquals(n, net.server.clients().size());
    double threadsPerClient = (double) (Thread.activeCount() - threadsBefore) / n;
    double heapPerClient = (double) (Heap.live() - heapBefore) / n;

    // Each call's latency runs from its issue to its completion, taken on the thread that
    // completes it, so a slow assertion loop below does not inflate it.
    Map<UUID, ListenableFuture<Msg>> calls = new HashMap<>();
    AtomicLong slowestNanos = new AtomicLong();
    for (ConnectedClient<ProbeGrpc.ProbeBlockingStub> c : net.server.clients()) {
      Msg m = ProbeService.msg(c.id().toString(), new byte[16]);
      long issued = System.nanoTime();
      ListenableFuture<Msg> call = ProbeGrpc.newFutureStub(c.channel())
          .withDeadlineAfter(120, TimeUnit.SECONDS).echo(m);
      call.addListener(() -> slowestNanos.accumulateAndGet(System.nanoTime() - issued,
          Math::max), MoreExecutors.directExecutor());
      calls.put(c.id(), call);
    }
    for (Map.Entry<UUID, ListenableFuture<Msg>> call : calls.entrySet()) {
      assertEquals(call.getKey().toString(), call.getValue().get(120, TimeUnit.SECONDS).getId());
    }
    long slowestMs = TimeUnit.NANOSECONDS.toMillis(slowestNanos.get());

    List<Future<?>> closing = new ArrayList<>();
    for (BrpcClient c : clients) {
      closing.add(pool.submit(c::close));
    }
    for (Future<?> c : closing) {
      c.get(120, TimeUnit.SECONDS);
    }
    for (int i = 0; i < n; i++) {
      assertNotNull(net.disconnected.poll(60, TimeUnit.SECONDS), "server missed a disconnect");
    }
    assertTrue(net.server.clients().isEmpty());
    // Known and open (RELIABILITY.md): now and then kwik leaves one connection's idle
    // callback executor thread ("callbacks-<id>") running after the connection ended. Counted
    // and reported; any other thread left over fails the test.
    List<String> left = threads.awaitEnd(Duration.ofSeconds(60));
    List<String> other = left.stream().filter(name -> !name.startsWith("callbacks-")).toList();
    assertTrue(other.isEmpty(), other.size() + " threads outlived their connections: " + other);
    assertTrue(left.size() <= Math.max(1, n / 100), left.size() + " kwik callback threads"
        + " outlived their connections: " + left);
    String cost = "per client (both ends, one JVM): " + String.format("%.1f", threadsPerClient)
        + " threads, " + Math.round(heapPerClient / 1024) + " KiB live heap; after they left,"
        + " threads back to the baseline but " + left.size() + " idle kwik callback thread(s)";
    // The first round's costs in full; of the later rounds, their times.
    figures.add(figures.isEmpty()
        ? "connected in " + connectMs + " ms, slowest callback " + slowestMs + " ms; " + cost
        : connectMs + "/" + slowestMs + " ms");
    return slowestMs;
  }
}
