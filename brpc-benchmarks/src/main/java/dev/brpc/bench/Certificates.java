package dev.brpc.bench;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;

/**
 * The one self-signed certificate every stack uses: {@code cert.pem} and {@code key.pem}
 * (PKCS#8, EC P-256), written by {@link Benchmark} with
 * {@link dev.brpc.quic.SelfSignedCertificate#writeTo}. The gRPC stacks take the files as they
 * are; raw kwik needs key stores, built here with the JDK alone.
 *
 * <p>Immutable; thread-safe.
 */
final class Certificates {
  static final String ALIAS = "bench";
  static final char[] PASSWORD = "bench".toCharArray();

  private final Path dir;

  Certificates(Path dir) {
    this.dir = dir;
  }

  Path certFile() {
    return dir.resolve("cert.pem");
  }

  Path keyFile() {
    return dir.resolve("key.pem");
  }

  /** The server's key and certificate under {@link #ALIAS}. */
  KeyStore keyStore() throws IOException, GeneralSecurityException {
    String pem = Files.readString(keyFile(), StandardCharsets.US_ASCII);
    byte[] der = Base64.getMimeDecoder().decode(pem.replaceAll("-----[^-]+-----", ""));
    PrivateKey key = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(der));
    KeyStore ks = emptyKeyStore();
    ks.setKeyEntry(ALIAS, key, PASSWORD, new Certificate[] {certificate()});
    return ks;
  }

  /** A trust store holding just the certificate. */
  KeyStore trustStore() throws IOException, GeneralSecurityException {
    KeyStore ks = emptyKeyStore();
    ks.setCertificateEntry(ALIAS, certificate());
    return ks;
  }

  private Certificate certificate() throws IOException, GeneralSecurityException {
    try (InputStream in = Files.newInputStream(certFile())) {
      return CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }

  private static KeyStore emptyKeyStore() throws IOException, GeneralSecurityException {
    KeyStore ks = KeyStore.getInstance("PKCS12");
    ks.load(null, null);
    return ks;
  }
}
