package dev.brpc.tcp;

import dev.brpc.quic.engine.QuicEngine;
import dev.brpc.quic.engine.QuicEngineProvider;

/**
 * Registers the {@code "tcp"} engine ({@code META-INF/services}) at the lowest priority: it is
 * used only where named ({@code engine("tcp")}, the {@code brpc.quic.engine} property) or by
 * a {@code BrpcClient} falling back from QUIC.
 *
 * <p>Thread-safe.
 */
public final class TcpEngineProvider extends QuicEngineProvider {
  private static final class Holder {
    static final TcpEngine ENGINE = new TcpEngine(null);
  }

  @Override
  public String name() {
    return TcpEngine.NAME;
  }

  @Override
  public int priority() {
    return 1;
  }

  @Override
  public boolean isAvailable() {
    return true;
  }

  @Override
  public QuicEngine engine() {
    return Holder.ENGINE;
  }
}
