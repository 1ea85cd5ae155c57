package dev.brpc.quic.netty;

import dev.brpc.quic.engine.DialSpec;
import dev.brpc.quic.engine.ListenSpec;
import dev.brpc.quic.engine.ServerCertificateCheck;
import io.netty.handler.codec.quic.QuicSslContext;
import io.netty.handler.codec.quic.QuicSslContextBuilder;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.util.Map;
import java.util.WeakHashMap;
import javax.net.ssl.KeyManagerFactory;

/**
 * TLS contexts for quiche's BoringSSL, from the same options the kwik engine takes.
 *
 * <p>A dialer's context is cached per trust source (the trust store or trust manager object
 * the channel builder holds, or none): a client reconnecting, or thousands of clients built
 * alike, do not each build one. Certificate checks are on unless the spec says insecure, and
 * include the host name (the JDK's "HTTPS" rules: DNS names and IP addresses).
 *
 * <p>Thread-safe.
 */
final class NettyTls {
  private static final Object NO_TRUST_SOURCE = new Object();
  private static final Object INSECURE = new Object();
  private static final Map<Object, Map<String, Client>> clientContexts =
      new WeakHashMap<>();

  private NettyTls() {}

  static QuicSslContext server(ListenSpec spec) throws IOException {
    try {
      // Only the configured entry: the key manager must not pick another key of the store.
      KeyStore only = KeyStore.getInstance(KeyStore.getDefaultType());
      only.load(null, null);
      Key key = spec.keyStore().getKey(spec.keyAlias(), spec.keyPassword());
      Certificate[] chain = spec.keyStore().getCertificateChain(spec.keyAlias());
      if (key == null || chain == null) {
        throw new IOException("the key store holds no key and chain under \"" + spec.keyAlias()
            + "\"");
      }
      char[] password = spec.keyPassword() == null ? new char[0] : spec.keyPassword();
      only.setKeyEntry("server", key, password, chain);
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(
          KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(only, password);
      return QuicSslContextBuilder.forServer(kmf, new String(password))
          .applicationProtocols(spec.alpn())
          .build();
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot use the server's key and certificate: " + e.getMessage(), e);
    }
  }

  /** A dialer's TLS context and, unless insecure, the check that verifies servers in it. */
  record Client(QuicSslContext context, ServerCertificateCheck check) {}

  static Client client(DialSpec spec) throws IOException {
    Object source = spec.insecure() ? INSECURE
        : spec.trustManager() != null ? spec.trustManager()
        : spec.trustStore() != null ? spec.trustStore()
        : NO_TRUST_SOURCE;
    synchronized (clientContexts) {
      Client cached = clientContexts.computeIfAbsent(source, k -> new java.util.HashMap<>())
          .get(spec.alpn());
      if (cached != null) {
        return cached;
      }
    }
    QuicSslContextBuilder b = QuicSslContextBuilder.forClient().applicationProtocols(spec.alpn());
    ServerCertificateCheck check = null;
    try {
      if (spec.insecure()) {
        b.trustManager(InsecureTrustManagerFactory.INSTANCE);
      } else {
        // Called with each connection's SSLEngine, the key under which it remembers why.
        check = ServerCertificateCheck.of(spec);
        b.trustManager(check);
        b.endpointIdentificationAlgorithm("HTTPS");
      }
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot use the trust settings: " + e.getMessage(), e);
    }
    Client built = new Client(b.build(), check);
    synchronized (clientContexts) {
      clientContexts.computeIfAbsent(source, k -> new java.util.HashMap<>())
          .putIfAbsent(spec.alpn(), built);
      return clientContexts.get(source).get(spec.alpn());
    }
  }
}
