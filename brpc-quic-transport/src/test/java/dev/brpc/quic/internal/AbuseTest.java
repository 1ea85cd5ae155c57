package dev.brpc.quic.internal;

import dev.brpc.quic.internal.kwik.HandshakeSplittingSocket;
import dev.brpc.quic.internal.kwik.KwikLogger;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.quic.QuicChannelBuilder;
import dev.brpc.quic.QuicServerBuilder;
import dev.brpc.quic.SelfSignedCertificate;
import dev.brpc.quic.EchoService;
import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import dev.brpc.fixtures.Heap;
import dev.brpc.fixtures.ThreadLeaks;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import tech.kwik.core.ConnectionTerminatedEvent;
import tech.kwik.core.QuicClientConnection;
import tech.kwik.core.QuicStream;

/**
 * Hostile peers, driven by hand over raw kwik connections: slow headers, a flood of calls
 * opened and reset, and a flood of connections that never authenticate. Each is cut off by
 * its limit, and a well-behaved client is served throughout. (Part of the reliability suite:
 * RELIABILITY.md.)
 */
@ExtendWith(dev.brpc.fixtures.ThreadDumpOnFailure.class)
class AbuseTest {
  private static final SelfSignedCertificate CERT = SelfSignedCertificate.generate("localhost");
  private Server server;
  private ManagedChannel good;
  private final List<QuicClientConnection> raws = new ArrayList<>();

  @AfterEach
  void tearDown() throws Exception {
    for (QuicClientConnection raw : raws) {
      raw.close();
    }
    if (good != null) {
      good.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
    if (server != null) {
      server.shutdownNow().awaitTermination(30, TimeUnit.SECONDS);
    }
  }

  private void startServer(UnaryOperator<QuicServerBuilder> config) throws IOException {
    server = config.apply(QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .useTransportSecurity(CERT)
        .addService(new EchoService())).build().start();
    good = QuicChannelBuilder.forAddress("localhost", server.getPort())
        .trustCertificate(CERT.certificate()).build();
  }

  /** A well-behaved call succeeds. */
  private void goodCallWorks() {
    assertEquals("ok", EchoGrpc.newBlockingStub(good).withDeadlineAfter(20, TimeUnit.SECONDS)
        .unary(Msg.newBuilder().setText("ok").build()).getText());
  }

  /** A raw connection; {@code closed} completes when it terminates. */
  private QuicClientConnection raw(CompletableFuture<ConnectionTerminatedEvent> closed)
      throws Exception {
    QuicClientConnection raw = QuicClientConnection.newBuilder()
        .applicationProtocol(Wire.ALPN)
        .host("localhost").port(server.getPort())
        .customTrustStore(Pem.trustStore(List.of(CERT.certificate())))
        .maxOpenPeerInitiatedUnidirectionalStreams(2)
        // As brpc's kwik dialer: without it, a dial to the native engine's server can hang.
        .socketFactory(address -> new HandshakeSplittingSocket())
        .logger(KwikLogger.INSTANCE)
        .build();
    raws.add(raw);
    raw.setConnectionListener(closed::complete);
    return raw;
  }

  /** Connects and sends SETTINGS, as a conforming dialer does (PROTOCOL.md, section 3). */
  private QuicClientConnection admitted(CompletableFuture<ConnectionTerminatedEvent> closed)
      throws Exception {
    QuicClientConnection raw = raw(closed);
    CountDownLatch serverSettings = new CountDownLatch(1);
    raw.setPeerInitiatedStreamCallback(s -> {
      if (s.isUnidirectional()) {
        serverSettings.countDown();
      }
    });
    raw.connect();
    QuicStream control = raw.createStream(false);
    control.getOutputStream().write(
        HeaderBlock.encodeFrame(Wire.FRAME_SETTINGS, new Metadata(), null, null, new byte[] {0}));
    control.getOutputStream().flush();
    assertTrue(serverSettings.await(10, TimeUnit.SECONDS));
    return raw;
  }

  @Test
  void slowHeaders_areResetAtTheHeadersTimeout() throws Exception {
    startServer(b -> b.headersTimeout(1, TimeUnit.SECONDS));
    QuicClientConnection raw = admitted(new CompletableFuture<>());
    byte[] headers = HeaderBlock.encodeFrame(Wire.FRAME_HEADERS, new Metadata(),
        "/brpc.test.Echo/Unary", "localhost", new byte[0]);
    QuicStream s = raw.createStream(true);
    OutputStream out = s.getOutputStream();
    long start = System.nanoTime();
    // Trickle: all but the last byte of the HEADERS frame, one byte at a time.
    Thread trickler = new Thread(() -> {
      try {
        for (int i = 0; i < headers.length - 1; i++) {
          out.write(headers[i]);
          out.flush();
          TimeUnit.MILLISECONDS.sleep(100); // the attack's own pace
        }
      } catch (IOException | InterruptedException e) {
        // reset by the server: the point of the test
      }
    });
    trickler.setDaemon(true);
    trickler.start();

    InputStream in = s.getInputStream();
    IOException reset = assertThrows(IOException.class, () -> {
      while (in.read() >= 0) {
        // the server sends nothing before the headers are complete
      }
      throw new AssertionError("stream ended without a reset");
    });
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    trickler.interrupt();
    assertTrue(ms >= 1_000, "reset after " + ms + " ms, before the headers timeout");
    // kwik does not expose the reset's code; the server sends DEADLINE_EXCEEDED's.
    assertEquals("Stream reset by peer", reset.getMessage());
    goodCallWorks();
  }

  /**
   * Rapid reset, the HTTP/2 attack, in the ordering that costs the server most: each call is
   * started (the server has run its handler and answered) before the abuser resets it. The
   * server counts the resets and, past its limit, closes the connection with
   * RESOURCE_EXHAUSTED, on either engine. The abuser waits for each call's first response
   * byte, so every reset reaches a call the server has: one outcome, every run.
   */
  @Test
  void aFloodOfStartedCallsReset_cutsTheAbuserOff_othersAreServed() throws Exception {
    startServer(b -> b.maxRstFramesPerWindow(100, 10));
    goodCallWorks();
    CompletableFuture<ConnectionTerminatedEvent> closed = new CompletableFuture<>();
    QuicClientConnection raw = admitted(closed);
    byte[] headers = HeaderBlock.encodeFrame(Wire.FRAME_HEADERS, new Metadata(),
        "/brpc.test.Echo/Bidi", "localhost", new byte[0]);
    byte[] emptyMessage = {Wire.FRAME_DATA, 5, 0, 0, 0, 0, 0};
    long code = Wire.errorCode(Status.CANCELLED);
    AtomicInteger reset = new AtomicInteger();
    long start = System.nanoTime();
    Thread abuser = new Thread(() -> {
      try {
        while (!closed.isDone()) {
          QuicStream s = raw.createStream(true);
          s.getOutputStream().write(headers);
          s.getOutputStream().write(emptyMessage);
          s.getOutputStream().flush();
          if (s.getInputStream().read() < 0) {
            return; // the server ended the call: the connection is going
          }
          s.resetStream(code);
          s.abortReading(code);
          reset.incrementAndGet();
        }
      } catch (IOException | RuntimeException e) {
        // the connection was closed under us
      }
    }, "abuser");
    abuser.setDaemon(true);
    abuser.start();

    ConnectionTerminatedEvent event = closed.get(60, TimeUnit.SECONDS);
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertTrue(event.closedByPeer(), event.toString());
    assertEquals(Wire.errorCode(Status.RESOURCE_EXHAUSTED), event.applicationErrorCode(),
        event.toString());
    // The 101st reset closes it; a few more may be under way before the close arrives.
    assertTrue(reset.get() >= 100 && reset.get() <= 150, reset + " calls reset");
    goodCallWorks();
    System.out.println("RESULT stream flood, started calls: cut off after " + reset
        + " resets in " + ms + " ms");
  }

  /**
   * Rapid reset in the cheap ordering: each stream is reset before any byte of it is sent.
   * The server has no call to spend anything on. kwik's server ignores a RESET_STREAM for a
   * stream it has never seen (StreamManager.process(ResetStreamFrame)), so it never creates
   * the streams and never returns their credit: the abuser is held at exactly its stream
   * credit. quiche creates the stream the RESET_STREAM names (RFC 9000, section 3.2), the
   * transport counts its reset, and past the limit the connection is closed with
   * RESOURCE_EXHAUSTED. Each server engine has one outcome, asserted.
   */
  @Test
  void aFloodOfStreamsResetBeforeTheirFirstByte_isBoundedByItsCreditOrCutOff()
      throws Exception {
    int credit = 200;
    startServer(b -> b.maxRstFramesPerWindow(100, 10).maxConcurrentCallsPerConnection(credit));
    goodCallWorks();
    CompletableFuture<ConnectionTerminatedEvent> closed = new CompletableFuture<>();
    QuicClientConnection raw = admitted(closed);
    long code = Wire.errorCode(Status.CANCELLED);
    AtomicInteger opened = new AtomicInteger();
    Thread abuser = new Thread(() -> {
      try {
        while (!closed.isDone()) {
          QuicStream s = raw.createStream(true); // blocks without credit
          s.resetStream(code);
          s.abortReading(code);
          opened.incrementAndGet();
        }
      } catch (IOException | RuntimeException e) {
        // the connection was closed under us
      }
    }, "abuser");
    abuser.setDaemon(true);
    abuser.start();

    if (nativeServer()) {
      ConnectionTerminatedEvent event = closed.get(60, TimeUnit.SECONDS);
      assertTrue(event.closedByPeer(), event.toString());
      assertEquals(Wire.errorCode(Status.RESOURCE_EXHAUSTED), event.applicationErrorCode(),
          event.toString());
      System.out.println("RESULT stream flood, reset before the first byte (native server):"
          + " cut off after " + opened + " streams");
    } else {
      // Wait for the abuser to block in createStream, out of credit.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (!(opened.get() == credit && blockedOpeningAStream(abuser))) {
        assertTrue(opened.get() <= credit, opened + " streams opened: the credit did not hold");
        assertTrue(System.nanoTime() < deadline, "the abuser never ran out of credit: "
            + opened + " streams, at " + Arrays.toString(abuser.getStackTrace()));
        assertTrue(!closed.isDone(), "closed: " + closed.getNow(null));
        TimeUnit.MILLISECONDS.sleep(10); // polling the abuser's state, not synchronising
      }
      goodCallWorks();
      assertEquals(credit, opened.get(), "streams opened past the credit");
      System.out.println("RESULT stream flood, reset before the first byte (kwik server):"
          + " held at its credit of " + credit + " streams");
    }
  }

  private static boolean blockedOpeningAStream(Thread t) {
    Thread.State state = t.getState();
    return (state == Thread.State.WAITING || state == Thread.State.TIMED_WAITING)
        && Arrays.toString(t.getStackTrace()).contains("StreamManager.createStream");
  }

  private static boolean nativeServer() {
    return "native".equals(System.getProperty("brpc.quic.engine"));
  }

  @Test
  void aFloodOfConnectionsThatNeverAuthenticate_eachClosedAtTheDeadline_threadsReturn()
      throws Exception {
    startServer(b -> b.handshakeTimeout(1, TimeUnit.SECONDS));
    goodCallWorks();
    ThreadLeaks threads = ThreadLeaks.snapshot();
    long heapBefore = Heap.live();
    int n = 50;
    List<CompletableFuture<ConnectionTerminatedEvent>> closings = new ArrayList<>();
    long start = System.nanoTime();
    for (int i = 0; i < n; i++) {
      CompletableFuture<ConnectionTerminatedEvent> closed = new CompletableFuture<>();
      closings.add(closed);
      raw(closed).connect(); // QUIC only: no SETTINGS, so never admitted
    }
    for (CompletableFuture<ConnectionTerminatedEvent> closed : closings) {
      ConnectionTerminatedEvent e = closed.get(20, TimeUnit.SECONDS);
      assertNotNull(e);
      assertTrue(e.closedByPeer(), e.toString());
      assertEquals(Wire.errorCode(Status.DEADLINE_EXCEEDED), e.applicationErrorCode());
    }
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertTrue(ms >= 1_000, "closed before the deadline: " + ms + " ms");
    goodCallWorks();
    for (QuicClientConnection raw : raws) {
      raw.close();
    }
    raws.clear();
    // Every connection's threads, the server's and the raw clients', end.
    threads.assertAllEnd(Duration.ofSeconds(30));
    long grown = Heap.live() - heapBefore;
    assertTrue(grown < 4 << 20, "live heap grew " + (grown >> 10) + " KiB");
    System.out.println("RESULT connection flood: " + n + " unauthenticated connections closed"
        + " by the 1 s deadline within " + ms + " ms; threads back to the baseline; live heap "
        + (grown >> 10) + " KiB over it");
  }
}
