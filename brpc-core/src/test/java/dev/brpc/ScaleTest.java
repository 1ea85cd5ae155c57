package dev.brpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.ListenableFuture;
import dev.brpc.test.AgentGrpc;
import dev.brpc.test.Rep;
import dev.brpc.test.Req;
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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Many clients at once: every callback arrives, and closing them all releases their threads. */
@org.junit.jupiter.api.extension.ExtendWith(dev.brpc.fixtures.ThreadDumpOnFailure.class)
class ScaleTest {
  private static final int CLIENTS = 200;
  private Fixture f;
  private final ExecutorService pool = Executors.newFixedThreadPool(16, r -> {
    Thread t = new Thread(r, "scale-test");
    t.setDaemon(true);
    return t;
  });

  @AfterEach
  void tearDown() throws Exception {
    pool.shutdownNow();
    if (f != null) {
      f.close();
    }
  }

  @Test
  void twoHundredClients_eachCalledBackOnce_noneLost_andTheirThreadsEnd() throws Exception {
    f = new Fixture();
    // Warm up: one client connects, is called and leaves, so lazily started shared threads
    // exist before the baseline is taken.
    f.connect("warm-up").close();
    assertTrue(f.disconnected.poll(30, TimeUnit.SECONDS) != null);
    ThreadLeaks threads = ThreadLeaks.snapshot("scale-test");

    List<Future<BrpcClient>> connecting = new ArrayList<>();
    for (int i = 0; i < CLIENTS; i++) {
      String name = "client-" + i;
      connecting.add(pool.submit(() -> f.connect(f.clientBuilder(new Fixture.Agent(name)))));
    }
    Map<UUID, String> expected = new HashMap<>();
    List<BrpcClient> clients = new ArrayList<>();
    for (int i = 0; i < CLIENTS; i++) {
      BrpcClient c = connecting.get(i).get(60, TimeUnit.SECONDS);
      clients.add(c);
      expected.put(c.id(), "client-" + i);
    }
    assertEquals(CLIENTS, f.server.clients().size());

    // All callbacks in flight at once, from outside any request.
    Map<UUID, ListenableFuture<Rep>> calls = new HashMap<>();
    for (ConnectedClient<AgentGrpc.AgentBlockingStub> c : f.server.clients()) {
      calls.put(c.id(), AgentGrpc.newFutureStub(c.channel())
          .withDeadlineAfter(60, TimeUnit.SECONDS).name(Req.getDefaultInstance()));
    }
    for (Map.Entry<UUID, ListenableFuture<Rep>> call : calls.entrySet()) {
      assertEquals(expected.get(call.getKey()), call.getValue().get(60, TimeUnit.SECONDS).getText());
    }

    List<Future<?>> closing = new ArrayList<>();
    for (BrpcClient c : clients) {
      closing.add(pool.submit(c::close));
    }
    for (Future<?> c : closing) {
      c.get(60, TimeUnit.SECONDS);
    }
    for (int i = 0; i < CLIENTS; i++) {
      assertTrue(f.disconnected.poll(30, TimeUnit.SECONDS) != null, "server missed a disconnect");
    }
    assertTrue(f.server.clients().isEmpty());

    // Every thread started since the snapshot belonged to a connection and must end.
    threads.assertAllEnd(Duration.ofSeconds(30));
  }
}
