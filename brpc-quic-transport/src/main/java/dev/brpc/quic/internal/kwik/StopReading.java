package dev.brpc.quic.internal.kwik;

import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.QuicConnection;
import tech.kwik.core.QuicStream;
import tech.kwik.core.frame.QuicFrame;
import tech.kwik.core.frame.StopSendingFrame;
import tech.kwik.core.impl.QuicConnectionImpl;

/**
 * Stops reading a call stream without losing connection flow-control credit, around a kwik
 * 0.10.9 bug that otherwise starves a long-lived connection.
 *
 * <p>The bug: {@code QuicStream.abortReading} discards the bytes buffered and not yet read, and
 * ignores the bytes that arrive after it, without crediting either to the connection's receive
 * window ({@code StreamInputStreamImpl.abortReading} never calls {@code
 * updateConnectionFlowControl}, unlike {@code terminate} for the peer's RESET_STREAM, and once
 * both halves are closed kwik drops the stream, and with it the final size). The peer has
 * counted those bytes against its connection credit, which therefore never comes back: each
 * aborted stream with data in flight shrinks the window for good, and once the window minus
 * what is lost is below kwik's update step (a tenth of the window), the peer can send nothing
 * on any stream, control stream included, and the connection idles out. {@code
 * KwikCreditLeakTest} reproduces it on bare kwik: 20 streams of 512 KiB, each aborted with its
 * data buffered, end a connection with a 10 MiB window. Upstream kwik still has it.
 *
 * <p>The way around: send STOP_SENDING ourselves ({@link #request}) and keep kwik's input
 * open, reading and discarding what arrives ({@link KwikStream#stopSending}) until the peer's
 * FIN or its RESET_STREAM, which RFC 9000 requires in answer to STOP_SENDING. kwik credits every byte
 * read and, on RESET_STREAM, everything up to the final size. A peer that does not answer
 * within the connection's idle timeout is cut off with kwik's {@code abortReading}: that
 * costs it the credit of what it sent since, which only slows that peer.
 *
 * <p>Reaching into kwik: {@link StopSendingFrame} and {@link QuicConnectionImpl#send} are
 * public classes in packages kwik's module does not export; the class path (how brpc-java is
 * used and tested) can see them.
 *
 * <p>Stateless; thread-safe. Nothing here blocks.
 */
final class StopReading {
  private static final Logger log = Logger.getLogger(StopReading.class.getName());

  /** One stream's STOP_SENDING, sent again if lost until {@link #done}. */
  static final class Request {
    private final QuicConnectionImpl quic;
    private final StopSendingFrame frame;
    private volatile boolean done;

    private Request(QuicConnectionImpl quic, StopSendingFrame frame) {
      this.quic = quic;
      this.frame = frame;
    }

    /** Runs on kwik's threads when a packet carrying the frame is declared lost. */
    private void lost(QuicFrame lostFrame) {
      if (!done) {
        quic.send(frame, this::lost, true);
      }
    }

    /** The input ended (FIN, reset, or given up): a lost STOP_SENDING is not sent again. */
    void done() {
      done = true;
    }
  }

  private StopReading() {}

  /**
   * Asks the peer to stop sending on {@code stream}, with {@code code}, leaving kwik's input
   * open. Any thread; never blocks.
   */
  static Request request(QuicConnection quic, QuicStream stream, long code) {
    QuicConnectionImpl impl = (QuicConnectionImpl) quic;
    // kwik's frame ignores the version; STOP_SENDING is the same in QUIC v1 and v2.
    Request r = new Request(impl, new StopSendingFrame(null, stream.getStreamId(), code));
    impl.send(r.frame, r::lost, true);
    return r;
  }

  /**
   * The peer did not answer STOP_SENDING in time: ends the input the way kwik can (losing
   * the credit of what the peer still sends).
   */
  static void giveUp(QuicStream stream, long code) {
    log.log(Level.FINE, "stream {0}: no answer to STOP_SENDING within the idle timeout;"
        + " aborting its input", stream.getStreamId());
    stream.abortReading(code);
  }
}
