package dev.brpc.quic.internal.kwik;

import dev.brpc.quic.engine.CloseInfo;
import dev.brpc.quic.engine.ConnectionAcceptor;
import dev.brpc.quic.engine.DialException;
import dev.brpc.quic.engine.DialSpec;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineListener;
import dev.brpc.quic.engine.ListenSpec;
import dev.brpc.quic.engine.QuicEngine;
import dev.brpc.quic.engine.ServerCertificateCheck;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.cert.CertificateException;
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
  private static final java.util.concurrent.atomic.AtomicBoolean QLOG_WARNED =
      new java.util.concurrent.atomic.AtomicBoolean();

  /**
   * kwik 0.10.9's core has only a qlog interface ({@code tech.kwik.core.log.QLog}, with a
   * {@code NullQLog}); its writer, {@code tech.kwik:kwik-qlog}, is not on Maven Central at
   * 0.10.9. Once per JVM, says that the setting is ignored.
   */
  private static void noQlog(java.nio.file.Path directory) {
    if (directory != null && QLOG_WARNED.compareAndSet(false, true)) {
      log.warning("qlogDirectory(" + directory + ") is ignored: the kwik engine writes no"
          + " qlog (use the native engine, brpc-quic-netty, for qlog files)");
    }
  }

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
    noQlog(spec.qlogDirectory());
    return KwikListener.start(spec, acceptor);
  }

  @Override
  public CompletableFuture<EngineConnection> dial(DialSpec spec) {
    noQlog(spec.qlogDirectory());
    CompletableFuture<EngineConnection> result = new CompletableFuture<>();
    KwikThreads.io().execute(() -> dial(spec, result));
    return result;
  }

  /** Blocks in kwik's connect(); on an io thread. */
  private static void dial(DialSpec spec, CompletableFuture<EngineConnection> result) {
    HandshakeSplittingSocket[] socket = new HandshakeSplittingSocket[1];
    BlockingDeadline[] deadline = new BlockingDeadline[1]; // set before connect(), read after
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
          // Connected, so that an ICMP port unreachable fails the dial at once (and only the
          // server's address can send to it); kwik sends to nothing else.
          s.connect(spec.target());
          s.onRefused(() -> {
            BlockingDeadline d = deadline[0];
            if (d != null) {
              d.expireNow();
            }
          });
          socket[0] = s;
          try {
            s.setReceiveBufferSize(4 * 1024 * 1024);
            s.setSendBufferSize(4 * 1024 * 1024);
          } catch (IOException e) {
            log.log(Level.FINE, "cannot enlarge UDP buffers", e);
          }
          return s;
        });
    ServerCertificateCheck check = null;
    QuicClientConnection quic;
    try {
      if (spec.insecure()) {
        b.noServerCertificateCheck();
      } else {
        check = ServerCertificateCheck.of(spec); // one per dial: kwik calls it without a key
        b.customTrustManager(check);
      }
      quic = b.build();
    } catch (IOException | GeneralSecurityException | RuntimeException e) {
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
    deadline[0] = silent;
    try {
      quic.connect();
    } catch (IOException | RuntimeException e) {
      boolean answered = silent.settle();
      HandshakeSplittingSocket s = socket[0];
      DialException failure = s != null && s.serverVersions != null
          ? DialException.versionMismatch(s.serverVersions, e)
          : answered && (e instanceof java.net.SocketTimeoutException
              || String.valueOf(e.getMessage()).startsWith("Connection timed out"))
          // kwik's "Connection timed out after <ms> ms": its connect timeout is the total
          ? DialException.handshakeTimeout(TimeUnit.NANOSECONDS.toMillis(
              Math.max(spec.connectTimeoutNanos(), spec.handshakeTimeoutNanos())), e)
          : answered
          ? failure(spec, check, e)
          : s != null && s.refused && !s.heard
          ? new DialException(DialException.Reason.REFUSED_BY_NETWORK, "connection refused:"
              + " nothing listens on UDP port " + spec.target().getPort() + " there (the OS"
              + " reported ICMP port unreachable); is the server running, and on this port?", e)
          : new DialException(DialException.Reason.NO_ANSWER, "no answer within the connect"
              + " timeout (" + TimeUnit.NANOSECONDS.toMillis(spec.connectTimeoutNanos())
              + " ms): is the server running, does a firewall drop UDP to it, or is it a"
              + " TCP-only server?", e);
      // kwik reports no termination for a failed connect(); nothing else will clean up.
      connection.terminate(new CloseInfo(CloseInfo.Kind.LOST, -1, failure.getMessage()));
      result.completeExceptionally(failure);
      return;
    }
    silent.settle();
    connection.localAddress(quic.getLocalAddress());
    connection.socket(socket[0]);
    if (!result.complete(connection)) {
      connection.close(0, "dial abandoned"); // cancelled meanwhile
    }
  }

  /** kwik's words for a CONNECTION_CLOSE during the handshake ({@code determineClosingErrorMessage}). */
  private static final java.util.regex.Pattern PEER_CLOSE = java.util.regex.Pattern.compile(
      "Server closed connection: (transport error|TLS error|application protocol error)"
          + " (\\d+)(?:: (.*))?");

  /**
   * Why a dial that the server answered failed. kwik reports TLS failures as a
   * {@code HandshakeFailure} with agent15's alert class in the message ("Handshake error:
   * tech.kwik.agent15.alert.BadCertificateAlert: ..."); the certificate check says it in
   * words, with the real exception as the cause.
   */
  private static DialException failure(DialSpec spec, ServerCertificateCheck check,
      Exception e) {
    String message = String.valueOf(e.getMessage());
    if (check != null) {
      boolean hostMismatch = message.contains("servername does not match");
      String why = check.explain(null, spec.host(), hostMismatch);
      if (why != null) {
        CertificateException refused = check.refusal(null);
        DialException d = new DialException(DialException.Reason.TLS, why,
            refused != null ? refused : e);
        if (refused != null) {
          d.addSuppressed(e);
        }
        return d;
      }
    }
    java.util.regex.Matcher closed = PEER_CLOSE.matcher(message);
    if (closed.find()) {
      long code = Long.parseLong(closed.group(2));
      CloseInfo info = closed.group(1).equals("application protocol error")
          ? new CloseInfo(CloseInfo.Kind.PEER_APPLICATION, code, closed.group(3))
          : new CloseInfo(CloseInfo.Kind.PEER_TRANSPORT,
              closed.group(1).equals("TLS error") ? 0x100 + code : code, closed.group(3));
      return new DialException(closed.group(1).equals("TLS error")
          ? DialException.Reason.TLS : DialException.Reason.CLOSED_BY_PEER,
          info.describeHandshakeClose(), e, info);
    }
    if (message.equals("Handshake error: ")) {
      // kwik ended connect() without an error of its own or one from the peer; seen when the
      // server closed the connection before kwik was handshaking (a refusal).
      CloseInfo info = new CloseInfo(CloseInfo.Kind.LOST, -1, "");
      return new DialException(DialException.Reason.CLOSED_BY_PEER,
          "the server closed the connection during the handshake, without saying why (it may"
              + " be shutting down or not accepting connections)", e, info);
    }
    boolean tls = message.contains("Handshake error") || message.contains("agent15.alert");
    return new DialException(tls ? DialException.Reason.TLS : DialException.Reason.OTHER,
        tls ? "TLS handshake failed: " + message.replace("Handshake error: ", "")
            .replace("tech.kwik.agent15.alert.", "") : message, e);
  }
}
