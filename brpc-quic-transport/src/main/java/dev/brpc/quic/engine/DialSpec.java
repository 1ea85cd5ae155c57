package dev.brpc.quic.engine;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.KeyStore;
import javax.net.ssl.X509TrustManager;

/**
 * What {@link QuicEngine#dial} needs.
 *
 * @param target where to send
 * @param host the name for TLS (SNI) and for verifying the server's certificate
 * @param alpn the application protocol offered
 * @param trustStore certificates to trust, or null
 * @param trustManager verifies the server instead of {@code trustStore}, or null; with both
 *     null, the JDK's default trust
 * @param insecure accept any certificate (development only)
 * @param connectTimeoutNanos how long to wait for the server's first packet
 * @param handshakeTimeoutNanos how long the handshake may take once the server answered
 * @param limits the connection's transport parameters
 * @param qlogDirectory where to write the connection's qlog file; null for none (an engine
 *     without qlog logs that it ignores it)
 */
public record DialSpec(InetSocketAddress target, String host, String alpn, KeyStore trustStore,
    X509TrustManager trustManager, boolean insecure, long connectTimeoutNanos,
    long handshakeTimeoutNanos, EngineLimits limits, Path qlogDirectory) {
  /**
   * A spec without qlog.
   *
   * @param target where to send
   * @param host the name for TLS (SNI) and for verifying the server's certificate
   * @param alpn the application protocol offered
   * @param trustStore certificates to trust, or null
   * @param trustManager verifies the server instead of {@code trustStore}, or null
   * @param insecure accept any certificate (development only)
   * @param connectTimeoutNanos how long to wait for the server's first packet
   * @param handshakeTimeoutNanos how long the handshake may take once the server answered
   * @param limits the connection's transport parameters
   */
  public DialSpec(InetSocketAddress target, String host, String alpn, KeyStore trustStore,
      X509TrustManager trustManager, boolean insecure, long connectTimeoutNanos,
      long handshakeTimeoutNanos, EngineLimits limits) {
    this(target, host, alpn, trustStore, trustManager, insecure, connectTimeoutNanos,
        handshakeTimeoutNanos, limits, null);
  }
}
