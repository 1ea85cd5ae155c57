package dev.brpc.quic.internal.kwik;

import dev.brpc.quic.engine.CloseInfo;
import dev.brpc.quic.engine.ConnectionAcceptor;
import dev.brpc.quic.engine.DialException;
import dev.brpc.quic.engine.DialSpec;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineListener;
import dev.brpc.quic.engine.ListenSpec;
import dev.brpc.quic.engine.QuicEngine;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.QuicClientConnection;

/**
 * The pure-Java engine, on kwik 0.10.9: brpc's default. kwik's API blocks ({@code connect()},
 * {@code createStream}, stream reads and writes); this adapter makes it non-blocking with the
 * workarounds of this package (each class says which kwik bug or trait it handles), and
 * {@code connect()} runs on {@link KwikThreads#io()}.
 *
 * <p>Thread-safe.
 */
final class KwikEngine implements QuicEngine {
  static final String NAME = "kwik";
  private static final Logger log = Logger.getLogger(KwikEngine.class.getName());

  KwikEngine() {
    KwikSendFix.requireAvailable();
    KwikReceiveHook.requireAvailable();
    KwikHardening.secureResetTokens();
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public EngineListener listen(ListenSpec spec, ConnectionAcceptor acceptor) throws IOException {
    return KwikListener.start(spec, acceptor);
  }

  @Override
  public CompletableFuture<EngineConnection> dial(DialSpec spec) {
    CompletableFuture<EngineConnection> result = new CompletableFuture<>();
    KwikThreads.io().execute(() -> dial(spec, result));
    return result;
  }

  /** Blocks in kwik's connect(); on an io thread. */
  private static void dial(DialSpec spec, CompletableFuture<EngineConnection> result) {
    HandshakeSplittingSocket[] socket = new HandshakeSplittingSocket[1];
    QuicClientConnection.Builder b = QuicClientConnection.newBuilder()
        .applicationProtocol(spec.alpn())
        .host(spec.host())
        .proxy(spec.target().getAddress().getHostAddress())
        .port(spec.target().getPort())
        .connectTimeout(Duration.ofNanos(
            Math.max(spec.connectTimeoutNanos(), spec.handshakeTimeoutNanos())))
        .maxIdleTimeout(Duration.ofNanos(spec.limits().idleTimeoutNanos()))
        .defaultStreamReceiveBufferSize(spec.limits().streamReceiveWindow())
        .maxOpenPeerInitiatedBidirectionalStreams(spec.limits().maxPeerBidiStreams())
        .maxOpenPeerInitiatedUnidirectionalStreams(spec.limits().maxPeerUniStreams())
        .logger(KwikLogger.INSTANCE)
        .socketFactory(destination -> {
          HandshakeSplittingSocket s = new HandshakeSplittingSocket();
          socket[0] = s;
          try {
            s.setReceiveBufferSize(4 * 1024 * 1024);
            s.setSendBufferSize(4 * 1024 * 1024);
          } catch (IOException e) {
            log.log(Level.FINE, "cannot enlarge UDP buffers", e);
          }
          return s;
        });
    if (spec.insecure()) {
      b.noServerCertificateCheck();
    } else if (spec.trustManager() != null) {
      b.customTrustManager(spec.trustManager());
    } else if (spec.trustStore() != null) {
      b.customTrustStore(spec.trustStore());
    }
    QuicClientConnection quic;
    try {
      quic = b.build();
    } catch (IOException | RuntimeException e) {
      result.completeExceptionally(
          new DialException(DialException.Reason.OTHER, String.valueOf(e.getMessage()), e));
      return;
    }
    KwikConnection connection = new KwikConnection(quic, spec.target(), null, spec.limits());
    // Set before connect(): kwik drops streams that arrive before a callback is set.
    quic.setPeerInitiatedStreamCallback(connection::onPeerStream);
    // An attempt whose server has sent nothing at all within the connect timeout ends then;
    // once it answers, the handshake may take up to the handshake timeout (kwik's own connect
    // timeout). So a dead or unreachable server costs an attempt only the connect timeout,
    // and the next attempt starts with kwik's first, short retransmission interval; while a
    // server that is merely slow (many clients handshaking at once after a restart) is not
    // abandoned mid-handshake, which would only repeat its work.
    BlockingDeadline silent = new BlockingDeadline(spec.connectTimeoutNanos(), () -> {
      HandshakeSplittingSocket s = socket[0];
      return s == null || !s.heard;
    });
    try {
      quic.connect();
    } catch (IOException | RuntimeException e) {
      boolean answered = silent.settle();
      DialException failure = answered
          ? new DialException(DialException.Reason.OTHER, String.valueOf(e.getMessage()), e)
          : new DialException(DialException.Reason.NO_ANSWER, "no answer within the connect"
              + " timeout (" + TimeUnit.NANOSECONDS.toMillis(spec.connectTimeoutNanos())
              + " ms)", e);
      // kwik reports no termination for a failed connect(); nothing else will clean up.
      connection.terminate(new CloseInfo(CloseInfo.Kind.LOST, -1, failure.getMessage()));
      result.completeExceptionally(failure);
      return;
    }
    silent.settle();
    connection.localAddress(quic.getLocalAddress());
    if (!result.complete(connection)) {
      connection.close(0, "dial abandoned"); // cancelled meanwhile
    }
  }
}
