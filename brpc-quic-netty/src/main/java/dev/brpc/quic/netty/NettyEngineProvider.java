package dev.brpc.quic.netty;

import dev.brpc.quic.engine.QuicEngine;
import dev.brpc.quic.engine.QuicEngineProvider;
import io.netty.handler.codec.quic.Quic;

/**
 * Registers the native engine ({@code META-INF/services}) under the name {@code "native"}, at a
 * priority above kwik's: with this module on the class path and its library loadable for this
 * OS and CPU, builders use it unless told otherwise.
 *
 * <p>Thread-safe.
 */
public final class NettyEngineProvider extends QuicEngineProvider {
  private static final class Holder {
    static final NettyEngine ENGINE = new NettyEngine();
  }

  @Override
  public String name() {
    return NettyEngine.NAME;
  }

  @Override
  public int priority() {
    return 10;
  }

  @Override
  public boolean isAvailable() {
    return Quic.isAvailable();
  }

  @Override
  public Throwable unavailabilityCause() {
    return Quic.isAvailable() ? null : Quic.unavailabilityCause();
  }

  @Override
  public QuicEngine engine() {
    return Holder.ENGINE;
  }
}
