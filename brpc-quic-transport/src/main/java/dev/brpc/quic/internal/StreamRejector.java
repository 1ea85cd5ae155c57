package dev.brpc.quic.internal;

import io.grpc.InternalStatus;
import io.grpc.Metadata;
import io.grpc.Status;
import java.io.IOException;
import java.io.OutputStream;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.QuicStream;

/**
 * Answers a call stream that will not be served with a trailers-only response and releases
 * the stream (PROTOCOL.md, "Refusing a call"): STOP_SENDING, then what the caller sent is
 * discarded until its answer ({@link StopReading}).
 *
 * <p>Stateless; thread-safe. {@link #reject} never blocks: it answers and drains on an io
 * thread.
 */
final class StreamRejector {
  private static final Logger log = Logger.getLogger(StreamRejector.class.getName());
  /** Trailer field that marks a refused call: the peer did not process it, so retry is safe. */
  static final Metadata.Key<String> REFUSED_KEY =
      Metadata.Key.of("brpc-refused", Metadata.ASCII_STRING_MARSHALLER);

  private StreamRejector() {}

  /**
   * @param refused whether the call was not processed at all (transparent retry is safe)
   */
  static void reject(Connection connection, QuicStream stream, Status status, boolean refused) {
    SharedExecutors.io().execute(() -> answerAndDrain(connection, stream, status, refused));
  }

  /** Blocks on kwik's write and reads. */
  private static void answerAndDrain(Connection connection, QuicStream stream, Status status,
      boolean refused) {
    try {
      OutputStream out = stream.getOutputStream();
      out.write(trailersFrame(status, refused));
      out.close();
    } catch (IOException | RuntimeException e) {
      log.log(Level.FINEST, "could not answer a rejected stream", e);
      stream.resetStream(Wire.errorCode(status));
    }
    StopReading.stopAndDrain(connection.quic, stream,
        refused ? Wire.REFUSED_STREAM : Wire.NO_ERROR, connection.config.idleTimeoutNanos);
  }

  /** The bytes of a TRAILERS frame carrying {@code status}. */
  static byte[] trailersFrame(Status status, boolean refused) {
    Metadata trailers = new Metadata();
    trailers.put(InternalStatus.CODE_KEY, status);
    if (status.getDescription() != null) {
      trailers.put(InternalStatus.MESSAGE_KEY, status.getDescription());
    }
    if (refused) {
      trailers.put(REFUSED_KEY, "1");
    }
    return HeaderBlock.encodeFrame(Wire.FRAME_TRAILERS, trailers, null, null, new byte[0]);
  }
}
