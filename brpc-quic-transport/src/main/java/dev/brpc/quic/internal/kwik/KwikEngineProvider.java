package dev.brpc.quic.internal.kwik;

import dev.brpc.quic.engine.QuicEngine;
import dev.brpc.quic.engine.QuicEngineProvider;

/**
 * Registers the kwik engine ({@code META-INF/services}): pure Java, always there, the lowest
 * priority, so that a native engine on the class path takes over.
 *
 * <p>Thread-safe.
 */
public final class KwikEngineProvider extends QuicEngineProvider {
  private static final class Holder {
    static final KwikEngine ENGINE = new KwikEngine();
  }

  @Override
  public String name() {
    return KwikEngine.NAME;
  }

  @Override
  public int priority() {
    return 5;
  }

  @Override
  public boolean isAvailable() {
    return unavailabilityCause() == null;
  }

  @Override
  public Throwable unavailabilityCause() {
    try {
      KwikSendFix.requireAvailable();
      KwikReceiveHook.requireAvailable();
      KwikHardening.requireAvailable();
      return null;
    } catch (IllegalStateException e) {
      return e;
    }
  }

  @Override
  public QuicEngine engine() {
    return Holder.ENGINE;
  }
}
