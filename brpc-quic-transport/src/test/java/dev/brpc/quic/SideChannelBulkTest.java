package dev.brpc.quic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.quic.internal.Engines;
import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * 1 GiB through one side channel, checked by SHA-256, in a JVM whose heap is far smaller than
 * the transfer ({@value #HEAP}): a side channel that buffered its bytes anywhere (a queue of
 * chunks, an unbounded send buffer) would fail the child with OutOfMemoryError. The child runs
 * server and client (a {@link QuicPair}, on the engine this suite runs on); the server's handler
 * writes, the client reads.
 */
class SideChannelBulkTest {
  private static final long SIZE = 1L << 30;
  private static final String HEAP = "-Xmx64m";

  @Test
  void oneGibibyte_arrivesIntact_inABoundedHeap() throws Exception {
    ExecutorService executor = Executors.newSingleThreadExecutor();
    try {
      Future<String> expected = executor.submit(() -> SideModes.sha256Hex(SIZE));
      Path output = Files.createTempFile("side-channel-bulk", ".txt");
      List<String> command = new ArrayList<>(List.of(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(), HEAP,
          "-XX:MaxDirectMemorySize=64m", "-cp",
          System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"))));
      String engine = System.getProperty(Engines.PROPERTY);
      if (engine != null) {
        command.add("-D" + Engines.PROPERTY + "=" + engine);
      }
      command.add(Child.class.getName());
      command.add(Long.toString(SIZE));
      Process child = new ProcessBuilder(command).redirectErrorStream(true)
          .redirectOutput(output.toFile()).start();
      boolean exited = child.waitFor(10, TimeUnit.MINUTES);
      String log = Files.readString(output, StandardCharsets.UTF_8);
      if (!exited) {
        child.destroyForcibly();
      }
      Files.delete(output);
      assertTrue(exited, "the child did not finish in 10 minutes:\n" + log);
      assertEquals(0, child.exitValue(), log);
      String sha = expected.get(5, TimeUnit.MINUTES);
      assertTrue(log.contains("received " + SIZE + ":" + sha + "\n"), log);
      assertTrue(log.contains("sent " + sha + "\n"), log);
      System.out.print(log); // the child's speed, in the test's report
    } finally {
      executor.shutdownNow();
    }
  }

  /** The child: one QuicPair, one download of {@code args[0]} bytes; prints both digests. */
  static final class Child {
    public static void main(String[] args) throws Exception {
      long size = Long.parseLong(args[0]);
      QuicPair pair = new QuicPair();
      SideChannels sides = SideChannels.create();
      CompletableFuture<String> received = CompletableFuture.supplyAsync(() -> {
        try (SideChannel c = sides.accept()) {
          return SideModes.digest(c.input());
        } catch (IOException e) {
          throw new RuntimeException(e);
        }
      });
      long start = System.nanoTime();
      String sent = EchoGrpc.newBlockingStub(pair.forward()).withDeadlineAfter(9, TimeUnit.MINUTES)
          .withOption(SideChannels.CALL_OPTION, sides)
          .unary(Msg.newBuilder().setText("side:download:" + size).build()).getText();
      String got = received.get(9, TimeUnit.MINUTES);
      long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      System.out.print("sent " + sent + "\n");
      System.out.print("received " + got + "\n");
      System.out.print("in " + millis + " ms, " + (size / 1e6 / (millis / 1e3)) + " MB/s, max heap "
          + (Runtime.getRuntime().maxMemory() >> 20) + " MiB\n");
      System.out.flush();
      pair.close();
      System.exit(0);
    }
  }
}
