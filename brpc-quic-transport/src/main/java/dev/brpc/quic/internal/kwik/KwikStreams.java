package dev.brpc.quic.internal.kwik;

import java.lang.reflect.Method;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.QuicConnection;
import tech.kwik.core.QuicStream;
import tech.kwik.core.impl.QuicConnectionImpl;
import tech.kwik.core.stream.StreamManager;

/**
 * Opens a stream without blocking when the peer's stream credit allows it. kwik's public
 * {@code QuicConnection.createStream} blocks until credit arrives, so a caller that must not
 * block hands it to another thread; kwik's {@code StreamManager} (reached through the
 * protected {@code QuicConnectionImpl.getStreamManager()}) has a variant with a timeout, and a
 * zero timeout only tries. A unary call thus opens its stream and writes its request on the
 * calling thread (see {@link KwikConnection#openStream}).
 *
 * <p>Needs reflective access to kwik's {@code tech.kwik.core.impl} package, as
 * {@link KwikSendFix} does; without it {@link #tryCreateBidirectional} always returns null and
 * every stream is opened on an io thread, which is only slower. Thread-safe.
 */
final class KwikStreams {
  private static final Logger log = Logger.getLogger(KwikStreams.class.getName());
  private static final Method STREAM_MANAGER = streamManagerMethod();

  private KwikStreams() {}

  private static Method streamManagerMethod() {
    try {
      Method m = QuicConnectionImpl.class.getDeclaredMethod("getStreamManager");
      m.setAccessible(true);
      return m;
    } catch (ReflectiveOperationException | RuntimeException e) {
      log.log(Level.FINE, "kwik's StreamManager is not accessible; streams are opened on the"
          + " opener thread", e);
      return null;
    }
  }

  /**
   * A new stream if the peer's credit allows one now; null if not (or if kwik's internals are
   * not accessible). Never blocks.
   */
  static QuicStream tryCreate(QuicConnection quic, boolean bidirectional) {
    if (STREAM_MANAGER == null || !(quic instanceof QuicConnectionImpl)
        || Thread.currentThread().isInterrupted()) {
      return null; // (an interrupted caller would lose its interrupt to the semaphore)
    }
    try {
      StreamManager streams = (StreamManager) STREAM_MANAGER.invoke(quic);
      return streams.createStream(bidirectional, 0, TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      return null; // no credit now
    } catch (ReflectiveOperationException | RuntimeException e) {
      log.log(Level.FINEST, "cannot open a stream inline", e);
      return null;
    }
  }
}
