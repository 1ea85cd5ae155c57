package dev.brpc.quic.internal.kwik;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.fixtures.ThreadDumpOnFailure;
import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import tech.kwik.core.QuicConnection;
import tech.kwik.core.QuicStream;

/**
 * {@link KwikReceiveHook} on bare kwik: the listener runs for every arrival, FIN and reset,
 * reads never block, and a closed connection ends a reader that waits for bytes.
 */
@ExtendWith(ThreadDumpOnFailure.class)
class KwikReceiveHookTest {
  private final CompletableFuture<QuicConnection> serverConnection = new CompletableFuture<>();
  private final CompletableFuture<QuicStream> serverStream = new CompletableFuture<>();
  private final Semaphore notified = new Semaphore(0);
  private RawKwik kwik;
  private QuicStream clientStream;
  private KwikReceiveHook.Input input;

  @BeforeEach
  void setUp() throws Exception {
    kwik = new RawKwik(10, (quic, stream) -> {
      serverConnection.complete(quic);
      serverStream.complete(stream);
    });
    clientStream = kwik.client.createStream(true);
    send(1);
    input = KwikReceiveHook.install(serverStream.get(10, TimeUnit.SECONDS), notified::release);
  }

  @AfterEach
  void tearDown() {
    kwik.close();
  }

  @Test
  void listenerRunsForEachArrival_andReadsNeverBlock() throws Exception {
    assertEquals(1, readNext()); // arrived before or after the install: either way it is read
    assertEquals(0, input.read(new byte[8], 0, 8), "nothing more: a read returns 0 at once");

    send(2);
    assertEquals(2, readNext());

    clientStream.getOutputStream().close(); // FIN
    assertEquals(-1, readNext());
  }

  @Test
  void resetByThePeer_isReportedAsSuch() throws Exception {
    assertEquals(1, readNext());
    clientStream.resetStream(7);
    IOException e = assertThrows(IOException.class, this::readNext);
    assertEquals("Stream reset by peer", e.getMessage());
  }

  @Test
  void closedConnection_endsAReaderWaitingForBytes() throws Exception {
    assertEquals(1, readNext());
    notified.drainPermits();
    assertEquals(0, input.read(new byte[8], 0, 8), "the stream is open and empty");

    KwikReceiveHook.connectionClosed(serverConnection.get());
    assertTrue(notified.tryAcquire(10, TimeUnit.SECONDS), "the listener was not run");
    IOException e = assertThrows(IOException.class, () -> input.read(new byte[8], 0, 8));
    assertEquals("Connection closed", e.getMessage());
  }

  private void send(int b) throws IOException {
    clientStream.getOutputStream().write(b);
    clientStream.getOutputStream().flush();
  }

  /**
   * The next byte, or -1 at the FIN, waiting for the listener while nothing is there: every
   * change must be notified, or this times out. Earlier notifications may still be counted.
   */
  private int readNext() throws Exception {
    byte[] one = new byte[1];
    while (true) {
      int n = input.read(one, 0, 1);
      if (n != 0) {
        return n < 0 ? -1 : one[0];
      }
      assertTrue(notified.tryAcquire(10, TimeUnit.SECONDS), "no arrival was notified");
    }
  }
}
