package dev.brpc.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.ListenableFuture;
import dev.brpc.BrpcClient;
import dev.brpc.ConnectedClient;
import dev.brpc.reliability.proto.Msg;
import dev.brpc.reliability.proto.ProbeGrpc;
import dev.brpc.testing.Heap;
import dev.brpc.testing.ThreadLeaks;
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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Many clients on one server, each called back once with every callback in flight at once:
 * none is lost, and the threads and heap each connected client costs are recorded. Server and
 * clients share this JVM, so the figures per client cover both ends of its connection.
 */
@ExtendWith(dev.brpc.testing.ThreadDumpOnFailure.class)
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

  @Test
  void manyClients_eachCalledBackOnce_noneLost_costPerClientRecorded() throws Exception {
    net = new Net(80);
    int n = Profile.pick(200, 1_000);
    net.warmUp();
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

    Map<UUID, ListenableFuture<Msg>> calls = new HashMap<>();
    for (ConnectedClient<ProbeGrpc.ProbeBlockingStub> c : net.server.clients()) {
      Msg m = ProbeService.msg(c.id().toString(), new byte[16]);
      calls.put(c.id(), ProbeGrpc.newFutureStub(c.channel())
          .withDeadlineAfter(120, TimeUnit.SECONDS).echo(m));
    }
    for (Map.Entry<UUID, ListenableFuture<Msg>> call : calls.entrySet()) {
      assertEquals(call.getKey().toString(), call.getValue().get(120, TimeUnit.SECONDS).getId());
    }

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
    Profile.record(n + " clients, each called back once", "0 lost; connected in " + connectMs
        + " ms; per client (both ends, one JVM): " + String.format("%.1f", threadsPerClient)
        + " threads, " + Math.round(heapPerClient / 1024) + " KiB live heap; after they left,"
        + " threads back to the baseline but " + left.size() + " idle kwik callback thread(s)");
  }
}
