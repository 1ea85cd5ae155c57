package dev.brpc.quic.engine;

import java.net.InetSocketAddress;
import java.security.KeyStore;

/**
 * What {@link QuicEngine#listen} needs.
 *
 * @param address where to bind (port 0 picks one)
 * @param alpn the one application protocol accepted
 * @param keyStore holds the server's private key and certificate chain under {@code keyAlias}
 * @param limits the connections' transport parameters
 */
public record ListenSpec(InetSocketAddress address, String alpn, KeyStore keyStore,
    String keyAlias, char[] keyPassword, EngineLimits limits) {}
