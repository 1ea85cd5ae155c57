package dev.brpc.quic.internal;

import dev.brpc.quic.engine.QuicEngine;
import dev.brpc.quic.engine.QuicEngineProvider;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.ServiceLoader;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Finds the QUIC engines on the class path ({@link QuicEngineProvider}s, through {@link
 * ServiceLoader}) and picks one, as grpc-java picks its transports: the one a builder names
 * ({@code engine("native")}); else the one the system property {@value #PROPERTY} names; else
 * the available one of highest priority. Depending on the transport alone, that is kwik.
 *
 * <p>When a provider is present but unavailable (a native library that does not load on this
 * platform, say), the first choice that passes it over logs one line at INFO saying why.
 *
 * <p>Thread-safe.
 */
public final class Engines {
  /** System property that picks the engine for builders that name none. */
  public static final String PROPERTY = "brpc.quic.engine";
  private static final Logger log = Logger.getLogger(Engines.class.getName());
  private static final AtomicBoolean fallbackLogged = new AtomicBoolean();

  private Engines() {}

  private static final class Holder {
    static final List<QuicEngineProvider> PROVIDERS = load();

    private static List<QuicEngineProvider> load() {
      List<QuicEngineProvider> found = new ArrayList<>();
      for (QuicEngineProvider p : ServiceLoader.load(QuicEngineProvider.class,
          QuicEngineProvider.class.getClassLoader())) {
        found.add(p);
      }
      found.sort(Comparator.comparingInt(QuicEngineProvider::priority).reversed());
      return List.copyOf(found);
    }
  }

  /** The names of the engines found, available or not, highest priority first. */
  public static List<String> names() {
    List<String> names = new ArrayList<>();
    for (QuicEngineProvider p : Holder.PROVIDERS) {
      names.add(p.name());
    }
    return names;
  }

  /**
   * The engine named {@code name}; or, if null, the one {@value #PROPERTY} names, or the best
   * available.
   *
   * @throws IllegalArgumentException if no engine has that name
   * @throws IllegalStateException if the named engine cannot run here, or none can
   */
  public static QuicEngine choose(String name) {
    LogSwitch.applyOnce();
    if (name == null) {
      String property = System.getProperty(PROPERTY);
      name = property == null || property.isBlank() ? null : property.trim();
    }
    if (name != null) {
      for (QuicEngineProvider p : Holder.PROVIDERS) {
        if (p.name().equals(name.toLowerCase(Locale.ROOT))) {
          Throwable cause = unavailability(p);
          if (cause != null) {
            throw new IllegalStateException("QUIC engine \"" + name + "\" cannot run here: "
                + cause, cause);
          }
          return p.engine();
        }
      }
      throw new IllegalArgumentException("no QUIC engine named \"" + name + "\" on the class"
          + " path; found " + names());
    }
    for (QuicEngineProvider p : Holder.PROVIDERS) {
      Throwable cause = unavailability(p);
      if (cause == null) {
        return p.engine();
      }
      if (fallbackLogged.compareAndSet(false, true)) {
        log.log(Level.INFO, "QUIC engine \"{0}\" is on the class path but cannot run here ({1});"
            + " using the next one", new Object[] {p.name(), cause});
      }
    }
    throw new IllegalStateException("no QUIC engine can run here; found " + names());
  }

  /**
   * Why {@code p} cannot run here, or null if it can. A provider whose own dependencies are
   * missing from the class path (a partial install) throws a LinkageError: that too only
   * makes it unavailable.
   */
  private static Throwable unavailability(QuicEngineProvider p) {
    try {
      if (p.isAvailable()) {
        return null;
      }
      Throwable cause = p.unavailabilityCause();
      return cause != null ? cause : new IllegalStateException("unavailable, no cause given");
    } catch (LinkageError | RuntimeException e) {
      return e;
    }
  }
}
