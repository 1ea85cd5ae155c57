package dev.brpc.quic.engine;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.KeyStore;

/**
 * What {@link QuicEngine#listen} needs.
 *
 * @param address where to bind (port 0 picks one)
 * @param alpn the one application protocol accepted
 * @param keyStore holds the server's private key and certificate chain under {@code keyAlias}
 * @param keyAlias the key entry's alias in {@code keyStore}
 * @param keyPassword the key entry's password
 * @param limits the connections' transport parameters
 * @param qlogDirectory where to write a qlog file per connection; null for none (an engine
 *     without qlog logs that it ignores it)
 */
public record ListenSpec(InetSocketAddress address, String alpn, KeyStore keyStore,
    String keyAlias, char[] keyPassword, EngineLimits limits, Path qlogDirectory) {
  /**
   * A spec without qlog.
   *
   * @param address where to bind (port 0 picks one)
   * @param alpn the one application protocol accepted
   * @param keyStore holds the server's private key and certificate chain under {@code keyAlias}
   * @param keyAlias the key entry's alias in {@code keyStore}
   * @param keyPassword the key entry's password
   * @param limits the connections' transport parameters
   */
  public ListenSpec(InetSocketAddress address, String alpn, KeyStore keyStore, String keyAlias,
      char[] keyPassword, EngineLimits limits) {
    this(address, alpn, keyStore, keyAlias, keyPassword, limits, null);
  }
}
