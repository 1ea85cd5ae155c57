package dev.brpc.quic.internal;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;

/**
 * Reads PEM certificates and private keys (PKCS#8, PKCS#1 RSA and SEC1 EC) and turns them into
 * the in-memory {@link KeyStore}s kwik takes. BouncyCastle parses the key formats the JDK
 * cannot.
 *
 * <p>Stateless; thread-safe.
 */
public final class Pem {
  /** Alias and password of the key entry in key stores made by {@link #keyStore}. */
  public static final String KEY_ALIAS = "brpc";

  private static final char[] KEY_PASSWORD = "brpc".toCharArray();

  private Pem() {}

  /** The password of the key entry in key stores made by {@link #keyStore}. */
  public static char[] keyPassword() {
    return KEY_PASSWORD.clone();
  }

  /** Reads every certificate in a PEM stream (the stream is read, not closed). */
  public static List<X509Certificate> readCertificates(InputStream pem) throws IOException {
    try {
      CertificateFactory factory = CertificateFactory.getInstance("X.509");
      List<X509Certificate> out = new ArrayList<>();
      for (Certificate c : factory.generateCertificates(pem)) {
        out.add((X509Certificate) c);
      }
      if (out.isEmpty()) {
        throw new IOException("no certificate found in the PEM input");
      }
      return out;
    } catch (CertificateException e) {
      throw new IOException("cannot parse PEM certificates: " + e.getMessage(), e);
    }
  }

  /** Reads the first private key in a PEM stream (the stream is read, not closed). */
  public static PrivateKey readPrivateKey(InputStream pem) throws IOException {
    Reader reader = new InputStreamReader(pem, StandardCharsets.US_ASCII);
    PEMParser parser = new PEMParser(reader);
    JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
    Object item;
    while ((item = parser.readObject()) != null) {
      if (item instanceof PrivateKeyInfo) {
        return converter.getPrivateKey((PrivateKeyInfo) item);
      }
      if (item instanceof PEMKeyPair) {
        return converter.getPrivateKey(((PEMKeyPair) item).getPrivateKeyInfo());
      }
    }
    throw new IOException("no unencrypted private key (PKCS#8, PKCS#1 or SEC1) found in the PEM"
        + " input");
  }

  /** An in-memory key store with one entry, {@link #KEY_ALIAS}, holding key and chain. */
  public static KeyStore keyStore(PrivateKey key, List<X509Certificate> chain) {
    try {
      KeyStore ks = KeyStore.getInstance("PKCS12");
      ks.load(null, null);
      ks.setKeyEntry(KEY_ALIAS, key, KEY_PASSWORD, chain.toArray(new Certificate[0]));
      return ks;
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalArgumentException("cannot build a key store: " + e.getMessage(), e);
    }
  }

  /** An in-memory trust store holding {@code certificates}. */
  public static KeyStore trustStore(List<X509Certificate> certificates) {
    try {
      KeyStore ks = KeyStore.getInstance("PKCS12");
      ks.load(null, null);
      int i = 0;
      for (X509Certificate c : certificates) {
        ks.setCertificateEntry("trusted-" + i++, c);
      }
      return ks;
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalArgumentException("cannot build a trust store: " + e.getMessage(), e);
    }
  }

}
