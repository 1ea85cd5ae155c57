package dev.brpc.quic.internal;

import dev.brpc.quic.engine.EngineStream;
import io.grpc.InternalStatus;
import io.grpc.Metadata;
import io.grpc.Status;
import java.io.IOException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Answers a call stream that will not be served with a trailers-only response and releases
 * the stream (PROTOCOL.md, "Refusing a call"): the trailers and FIN, then STOP_SENDING; the
 * engine discards what the caller still sends until its answer.
 *
 * <p>Stateless; thread-safe. {@link #reject} never blocks.
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
  static void reject(EngineStream stream, Status status,
      boolean refused) {
    byte[] trailers = trailersFrame(status, refused);
    // A fresh stream's send buffer takes a small frame; if not, the caller gets a reset.
    if (stream.writableBytes() >= trailers.length) {
      try {
        stream.write(trailers, 0, trailers.length, true);
      } catch (IOException | RuntimeException e) {
        log.log(Level.FINEST, "could not answer a rejected stream", e);
        stream.reset(Wire.errorCode(status));
      }
    } else {
      stream.reset(Wire.errorCode(status));
    }
    stream.stopSending(refused ? Wire.REFUSED_STREAM : Wire.NO_ERROR);
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
