package dev.brpc.quic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.ListenableFuture;
import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import io.grpc.Status;
import java.io.IOException;
import java.io.OutputStream;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Side channels (PROTOCOL.md section 7) in both directions: the client's calls to the server
 * (reverse=false) and the server's callbacks to the client (reverse=true). The callee's side
 * is {@link SideModes}.
 */
class SideChannelTest {
  private static final long MiB = 1 << 20;
  private QuicPair pair;
  private final ExecutorService executor = Executors.newCachedThreadPool();

  @BeforeEach
  void setUp() throws Exception {
    pair = new QuicPair();
  }

  @AfterEach
  void tearDown() throws Exception {
    executor.shutdownNow();
    pair.close();
  }

  private static Msg text(String text) {
    return Msg.newBuilder().setText(text).build();
  }

  private EchoGrpc.EchoBlockingStub blocking(boolean reverse, SideChannels sides)
      throws InterruptedException {
    EchoGrpc.EchoBlockingStub stub = EchoGrpc.newBlockingStub(pair.channel(reverse))
        .withDeadlineAfter(60, TimeUnit.SECONDS);
    return sides == null ? stub : stub.withOption(SideChannels.CALL_OPTION, sides);
  }

  private EchoGrpc.EchoFutureStub future(boolean reverse, SideChannels sides)
      throws InterruptedException {
    return EchoGrpc.newFutureStub(pair.channel(reverse)).withDeadlineAfter(60, TimeUnit.SECONDS)
        .withOption(SideChannels.CALL_OPTION, sides);
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void calleeOpens_callerAccepts_bytesArriveIntact(boolean reverse) throws Exception {
    long size = 8 * MiB + 123;
    SideChannels sides = SideChannels.create();
    Future<String> received = executor.submit(() -> {
      try (SideChannel c = sides.accept()) {
        return SideModes.digest(c.input());
      }
    });
    String sha = blocking(reverse, sides).unary(text("side:download:" + size)).getText();
    assertEquals(SideModes.sha256Hex(size), sha);
    assertEquals(size + ":" + sha, received.get(60, TimeUnit.SECONDS));
    awaitNoOpenStreams();
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void callerOpens_calleeAccepts_bytesArriveIntact(boolean reverse) throws Exception {
    long size = 8 * MiB + 7;
    SideChannels sides = SideChannels.create();
    ListenableFuture<Msg> reply = future(reverse, sides).unary(text("side:upload"));
    try (SideChannel c = sides.open()) {
      SideModes.writeData(c.output(), size);
    }
    assertEquals(size + ":" + SideModes.sha256Hex(size),
        reply.get(60, TimeUnit.SECONDS).getText());
    awaitNoOpenStreams();
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void bothDirectionsAtOnce_echoedBack(boolean reverse) throws Exception {
    long size = 4 * MiB + 1;
    SideChannels sides = SideChannels.create();
    ListenableFuture<Msg> reply = future(reverse, sides).unary(text("side:echo"));
    try (SideChannel c = sides.open()) {
      Future<?> writer = executor.submit(() -> {
        SideModes.writeData(c.output(), size);
        c.output().close();
        return null;
      });
      assertEquals(size + ":" + SideModes.sha256Hex(size), SideModes.digest(c.input()));
      writer.get(60, TimeUnit.SECONDS);
    }
    assertEquals("echoed " + size, reply.get(60, TimeUnit.SECONDS).getText());
    awaitNoOpenStreams();
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void callWithoutTheOption_refusesSideChannels(boolean reverse) throws Exception {
    String result = blocking(reverse, null).unary(text("side:open")).getText();
    assertTrue(result.startsWith("failed: ") && result.contains("refused"), result);
    // The connection and its other calls are unaffected.
    assertEquals("ok", blocking(reverse, null).unary(text("ok")).getText());
    awaitNoOpenStreams();
  }

  @Test
  void currentOutsideAHandler_saysWhere() {
    IllegalStateException e = assertThrows(IllegalStateException.class, SideChannels::current);
    assertTrue(e.getMessage().contains("server handler"), e.getMessage());
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void callThatEnded_opensAndAcceptsNoMore(boolean reverse) throws Exception {
    SideChannels sides = SideChannels.create();
    assertEquals("plain", blocking(reverse, sides).unary(text("plain")).getText());
    IOException open = assertThrows(IOException.class, sides::open);
    assertTrue(open.getMessage().contains("call has ended"), open.getMessage());
    IOException accept = assertThrows(IOException.class, sides::accept);
    assertTrue(accept.getMessage().contains("call has ended"), accept.getMessage());
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void cancelledCall_closesItsSideChannelsWithAnError_nothingLeaks(boolean reverse)
      throws Exception {
    SideChannels sides = SideChannels.create();
    ListenableFuture<Msg> reply = future(reverse, sides).unary(text("side:hold"));
    SideChannel c = sides.open();
    c.output().write(new byte[1024]);
    assertTrue(pair.callee(reverse).side.held.await(30, TimeUnit.SECONDS));

    reply.cancel(true);
    IOException read = assertThrows(IOException.class, () -> c.input().read());
    assertTrue(read.getMessage().contains("CANCELLED"), read.getMessage());
    IOException write = assertThrows(IOException.class, () -> writeUntilFailure(c.output()));
    assertNotNull(write.getMessage());
    String calleeSaw = pair.callee(reverse).side.failures.poll(30, TimeUnit.SECONDS);
    assertNotNull(calleeSaw, "the callee's read did not fail");
    assertTrue(calleeSaw.contains("CANCELLED") || calleeSaw.contains("reset"), calleeSaw);
    c.close();
    awaitNoOpenStreams();
    // The connection goes on.
    assertEquals("ok", blocking(reverse, null).unary(text("ok")).getText());
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void callFailedByTheCallee_itsSideChannelFails(boolean reverse) throws Exception {
    SideChannels sides = SideChannels.create();
    ListenableFuture<Msg> reply = future(reverse, sides).unary(text("side:fail"));
    SideChannel c = sides.open();
    IOException write = assertThrows(IOException.class, () -> writeUntilFailure(c.output()));
    assertNotNull(write.getMessage());
    ExecutionException e = assertThrows(ExecutionException.class,
        () -> reply.get(60, TimeUnit.SECONDS));
    assertEquals(Status.Code.INTERNAL, Status.fromThrowable(e.getCause()).getCode());
    assertThrows(IOException.class, () -> c.input().read());
    c.close();
    awaitNoOpenStreams();
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void gracefulShutdownOfTheCallee_waitsForTheSideChannel(boolean reverse) throws Exception {
    long size = 32 * MiB;
    SideChannels sides = SideChannels.create();
    ListenableFuture<Msg> reply = future(reverse, sides).unary(text("side:download:" + size));
    try (SideChannel c = sides.accept()) {
      int first = c.input().read();
      assertTrue(first >= 0);
      io.grpc.Server callee = reverse ? pair.callbacks : pair.server;
      callee.shutdown();
      String rest = SideModes.digest(c.input());
      assertEquals(size - 1, Long.parseLong(rest.substring(0, rest.indexOf(':'))));
      assertEquals(SideModes.sha256Hex(size), reply.get(60, TimeUnit.SECONDS).getText());
      assertTrue(callee.awaitTermination(60, TimeUnit.SECONDS));
    }
  }

  @Test
  void connectionLostMidTransfer_bothSidesFail_theServerServesOthers() throws Exception {
    SideChannels sides = SideChannels.create();
    ListenableFuture<Msg> reply = future(false, sides).unary(text("side:download:" + (1L << 40)));
    SideChannel c = sides.accept();
    assertTrue(c.input().readNBytes(1024 * 1024).length == 1024 * 1024);
    pair.channel.shutdownNow(); // the client goes away, its connection with it
    assertThrows(IOException.class, () -> SideModes.digest(c.input()));
    assertThrows(ExecutionException.class, () -> reply.get(60, TimeUnit.SECONDS));
    String serverSaw = pair.serverEcho.side.failures.poll(60, TimeUnit.SECONDS);
    assertNotNull(serverSaw, "the server's write did not fail");
    // Another client is served.
    io.grpc.ManagedChannel other = QuicChannelBuilder.forAddress("localhost", pair.server.getPort())
        .trustCertificate(QuicPair.CERT.certificate()).build();
    try {
      assertEquals("ok", EchoGrpc.newBlockingStub(other).withDeadlineAfter(30, TimeUnit.SECONDS)
          .unary(text("ok")).getText());
    } finally {
      other.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void closeWhileAWriterWaitsForThePeer_returnsAtOnce_andTheWriterFails() throws Exception {
    SideChannels sides = SideChannels.create();
    ListenableFuture<Msg> reply = future(false, sides).unary(text("side:stall"));
    SideChannel c = sides.open();
    assertTrue(pair.serverEcho.side.held.await(30, TimeUnit.SECONDS));
    java.util.concurrent.atomic.AtomicReference<Thread> writerThread =
        new java.util.concurrent.atomic.AtomicReference<>();
    Future<IOException> writer = executor.submit(() -> {
      writerThread.set(Thread.currentThread());
      try {
        writeUntilFailure(c.output());
        return null;
      } catch (IOException e) {
        return e;
      }
    });
    // The peer never reads: the writer ends up waiting for flow-control credit.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (writerThread.get() == null || writerThread.get().getState() != Thread.State.WAITING) {
      assertTrue(System.nanoTime() < deadline, "the writer never waited for the peer");
      Thread.sleep(10); // polling a condition with a deadline
    }
    org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(30),
        c::close, "close() waited for the blocked writer");
    assertNotNull(writer.get(30, TimeUnit.SECONDS), "the writer did not fail");
    reply.cancel(true);
    awaitNoOpenStreams();
  }

  /** Writes until the channel fails (it must: a test that ends here fails by its timeout). */
  private static void writeUntilFailure(OutputStream out) throws IOException {
    byte[] chunk = new byte[16 * 1024];
    while (true) {
      out.write(chunk);
    }
  }

  /**
   * Waits until the server's connection has no open streams: every call and side channel of
   * the test released its QUIC stream on the server.
   */
  private void awaitNoOpenStreams() throws Exception {
    PeerConnection peer = pair.peer();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    int open;
    while ((open = peer.info().openStreams()) != 0) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(open + " streams still open on the server's connection");
      }
      Thread.sleep(10); // polling a condition with a deadline, not a timing assumption
    }
  }
}
