package dev.brpc.quic.engine;

/**
 * Makes a {@link QuicEngine} known to brpc, through {@link java.util.ServiceLoader} (a file
 * {@code META-INF/services/dev.brpc.quic.engine.QuicEngineProvider} naming the subclass), as
 * grpc-java finds its transports. Builders use the available provider of highest priority
 * unless told otherwise.
 *
 * <p>Implementations are thread-safe and cheap to construct: the loader makes one of each.
 */
public abstract class QuicEngineProvider {
  /**
   * The engine's name, as {@link QuicEngine#name()}.
   *
   * @return the engine's name
   */
  public abstract String name();

  /**
   * Higher wins among available providers: 5 for the pure-Java default (kwik), more for an
   * engine that should replace it when present.
   *
   * @return the provider's priority
   */
  public abstract int priority();

  /**
   * Whether the engine can run in this JVM (for a native engine: its library loads).
   *
   * @return true if the engine can run here
   */
  public abstract boolean isAvailable();

  /**
   * Why {@link #isAvailable()} is false, for the log line; null when it is available.
   *
   * @return the reason the engine cannot run, or null
   */
  public Throwable unavailabilityCause() {
    return null;
  }

  /**
   * The engine; the same instance each time. Only called when available.
   *
   * @return the engine
   */
  public abstract QuicEngine engine();
}
