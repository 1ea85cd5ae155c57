package dev.brpc.quic.internal.kwik;

import java.lang.reflect.Field;
import java.security.SecureRandom;
import java.util.Random;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.server.ServerConnector;

/**
 * Guards for security problems in kwik 0.10.9 that kwik fixed upstream after that release
 * (0.10.9 is the newest on Maven Central), where a guard from outside kwik is possible.
 * RELIABILITY.md, "kwik's fixes after 0.10.9", lists every fix, which are guarded here, which
 * elsewhere, and which cannot be; {@code KwikFixesTest} shows each exposure and each guard.
 *
 * <ul>
 *   <li>{@link #secureResetTokens}: kwik 0.10.9 draws every stateless reset token from one
 *       JVM-wide {@code java.util.Random} ({@code NewConnectionIdFrame.random}), so one token a
 *       peer receives gives away the generator's state and every token this JVM issues after
 *       it; with one, an attacker who can spoof packets ends a victim's connection (RFC 9000,
 *       section 10.3: tokens must be hard to guess). Upstream a68f1c72 made it a SecureRandom;
 *       so does this, once per JVM, before kwik issues a connection id.
 *   <li>{@link #keepJvmUp}: kwik 0.10.9's server calls {@code System.exit(9)} when its receiver
 *       thread fails (any IOException of the socket while not closing, any Throwable, such as
 *       an OutOfMemoryError), which would end the user's whole application. Upstream 4031b6ed
 *       closes the connector instead; so does this, with a SEVERE log line.
 * </ul>
 *
 * <p>Thread-safe. {@link #secureResetTokens} runs once ({@link KwikEngine}'s constructor).
 */
final class KwikHardening {
  private static final Logger log = Logger.getLogger(KwikHardening.class.getName());
  private static final Field RESET_TOKEN_RANDOM;
  private static final Field RECEIVER;
  private static final Field ABORT_CALLBACK;
  private static final RuntimeException UNAVAILABLE;

  static {
    Field random = null;
    Field receiver = null;
    Field abort = null;
    RuntimeException error = null;
    try {
      random = Class.forName("tech.kwik.core.frame.NewConnectionIdFrame")
          .getDeclaredField("random");
      receiver = Class.forName("tech.kwik.core.server.impl.ServerConnectorImpl")
          .getDeclaredField("receiver");
      abort = Class.forName("tech.kwik.core.receive.Receiver").getDeclaredField("abortCallback");
      if (random.getType() != Random.class || abort.getType() != Consumer.class) {
        throw new NoSuchFieldException("unexpected field types");
      }
      random.setAccessible(true);
      receiver.setAccessible(true);
      abort.setAccessible(true);
    } catch (ReflectiveOperationException | RuntimeException e) {
      random = null;
      receiver = null;
      abort = null;
      error = KwikSendFix.unusable("apply its guards for kwik's published security fixes", e);
    }
    RESET_TOKEN_RANDOM = random;
    RECEIVER = receiver;
    ABORT_CALLBACK = abort;
    UNAVAILABLE = error;
  }

  private static volatile boolean tokensSecured;

  private KwikHardening() {}

  static void requireAvailable() {
    if (UNAVAILABLE != null) {
      throw UNAVAILABLE;
    }
  }

  /** Makes kwik draw stateless reset tokens from a SecureRandom. Idempotent; any thread. */
  static synchronized void secureResetTokens() {
    requireAvailable();
    if (tokensSecured) {
      return;
    }
    try {
      if (!(RESET_TOKEN_RANDOM.get(null) instanceof SecureRandom)) {
        RESET_TOKEN_RANDOM.set(null, new SecureRandom());
      }
    } catch (IllegalAccessException e) {
      throw KwikSendFix.unusable("make kwik's stateless reset tokens unpredictable", e);
    }
    tokensSecured = true;
  }

  /**
   * Replaces the {@code System.exit(9)} that {@code connector}'s receiver thread calls when it
   * fails with {@code onFailure}, which runs on that thread (as it is about to end) and must
   * not block. Call before {@code connector.start()}.
   */
  static void keepJvmUp(ServerConnector connector, Consumer<Throwable> onFailure) {
    requireAvailable();
    try {
      Object receiver = RECEIVER.get(connector);
      ABORT_CALLBACK.set(receiver, (Consumer<Throwable>) failure -> {
        try {
          onFailure.accept(failure);
        } catch (RuntimeException e) {
          log.log(Level.SEVERE, "QUIC server failure handler failed", e);
        }
      });
    } catch (IllegalAccessException | IllegalArgumentException e) {
      throw KwikSendFix.unusable("stop kwik's server from exiting the JVM on a socket error", e);
    }
  }
}
