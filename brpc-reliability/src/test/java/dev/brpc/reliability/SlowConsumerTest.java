package dev.brpc.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.BrpcClient;
import dev.brpc.reliability.proto.Chunk;
import dev.brpc.reliability.proto.ProbeGrpc;
import dev.brpc.reliability.proto.Size;
import dev.brpc.testing.Heap;
import io.grpc.Channel;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A consumer slower than its producer, in both directions: flow control, not the heap, holds
 * the difference. The heap is sampled after a full collection while the stream runs.
 */
@ExtendWith(dev.brpc.testing.ThreadDumpOnFailure.class)
class SlowConsumerTest {
  private static final int CHUNK = 64 * 1024;
  private static final long HEAP_BUDGET = 16L << 20;
  private Net net;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "slow-consumer-test");
    t.setDaemon(true);
    return t;
  });

  @AfterEach
  void tearDown() throws Exception {
    timer.shutdownNow();
    if (net != null) {
      net.close();
    }
  }

  /**
   * Downloads {@code bytes} over {@code channel}, asking for one message every {@code
   * periodMicros}: the consumer's pace. Returns the largest live heap seen above {@code base}.
   */
  private long slowDownload(Channel channel, long bytes, long periodMicros, long base)
      throws Exception {
    CompletableFuture<Long> done = new CompletableFuture<>();
    AtomicLong received = new AtomicLong();
    AtomicLong peak = new AtomicLong();
    ProbeGrpc.newStub(channel).withDeadlineAfter(120, TimeUnit.SECONDS).download(
        Size.newBuilder().setBytes(bytes).setChunk(CHUNK).setSeed(7).build(),
        new ClientResponseObserver<Size, Chunk>() {
          private ClientCallStreamObserver<Size> call;

          @Override
          public void beforeStart(ClientCallStreamObserver<Size> call) {
            this.call = call;
            call.disableAutoRequestWithInitial(1);
          }

          @Override
          public void onNext(Chunk chunk) {
            if (received.getAndAdd(chunk.getData().size()) == 0) {
              // The call has started: from now on the consumer asks at its own pace.
              ScheduledFuture<?> reader = timer.scheduleAtFixedRate(() -> call.request(1),
                  periodMicros, periodMicros, TimeUnit.MICROSECONDS);
              ScheduledFuture<?> sampler = timer.scheduleAtFixedRate(
                  () -> peak.accumulateAndGet(Heap.live() - base, Math::max),
                  200, 200, TimeUnit.MILLISECONDS);
              done.whenComplete((r, t) -> {
                reader.cancel(false);
                sampler.cancel(false);
              });
            }
          }

          @Override
          public void onError(Throwable t) {
            done.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {
            done.complete(received.get());
          }
        });
    try {
      assertEquals(bytes, (long) done.get(120, TimeUnit.SECONDS));
    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
      throw new AssertionError("received " + received.get() + " of " + bytes + " bytes", e);
    }
    return peak.get();
  }

  @Test
  void slowConsumers_bothWays_heapStaysWithinSixteenMegabytesOfTheBaseline() throws Exception {
    net = new Net(70);
    BrpcClient client = net.connect(net.direct(new ProbeService()));
    long bytes = Profile.pick(32, 200) * (1L << 20);
    // 64 KiB every 12.5 ms: 5 MB/s, well below what the transport delivers on loopback
    // (10-20 MB/s), so the producer is always ahead and flow control holds it back.
    long period = 12_500;
    // Warm up both directions, so that lazily created buffers and classes are in the baseline.
    slowDownload(client.channel(), 4 << 20, 100, 0);
    slowDownload(net.serverSide(client).channel(), 4 << 20, 100, 0);
    long base = Heap.live();

    long start = System.nanoTime();
    long forward = slowDownload(client.channel(), bytes, period, base);
    long back = slowDownload(net.serverSide(client).channel(), bytes, period, base);
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertTrue(forward < HEAP_BUDGET, "client reading slowly: heap grew " + (forward >> 10)
        + " KiB");
    assertTrue(back < HEAP_BUDGET, "server reading slowly: heap grew " + (back >> 10) + " KiB");
    Profile.record("slow consumer, " + (bytes >> 20) + " MB each way at 5 MB/s",
        "peak live heap above the baseline: " + (forward >> 10) + " KiB (client reading), "
        + (back >> 10) + " KiB (server reading); " + ms + " ms");
  }
}
