package dev.brpc.quic;

import dev.brpc.quic.internal.Pem;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A self-signed EC P-256 certificate and its key, generated in memory: <b>for development and
 * tests only</b>. A client trusts it by pinning it ({@link QuicChannelBuilder#trustCertificate})
 * or by reading {@link #certificatePem()} written to a file.
 *
 * <pre>{@code
 * SelfSignedCertificate cert = SelfSignedCertificate.generate("localhost");
 * Server server = QuicServerBuilder.forPort(0).useTransportSecurity(cert).addService(svc)
 *     .build().start();
 * ManagedChannel channel = QuicChannelBuilder.forAddress("localhost", server.getPort())
 *     .trustCertificate(cert.certificate()).build();
 * }</pre>
 *
 * <p>kwik checks DNS names only, never IP addresses, so clients dial a host name that is
 * among {@code hostNames} (usually {@code localhost}).
 *
 * <p>Immutable; thread-safe.
 */
public final class SelfSignedCertificate {
  private final KeyPair keyPair;
  private final X509Certificate certificate;

  private SelfSignedCertificate(KeyPair keyPair, X509Certificate certificate) {
    this.keyPair = keyPair;
    this.certificate = certificate;
  }

  /**
   * Generates a certificate valid for one year for the given DNS names.
   *
   * @param hostNames the DNS names clients will dial; at least one
   * @return the new certificate with its private key
   */
  public static SelfSignedCertificate generate(String... hostNames) {
    if (hostNames.length == 0) {
      throw new IllegalArgumentException("at least one host name is required");
    }
    try {
      KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
      generator.initialize(new ECGenParameterSpec("secp256r1"), new SecureRandom());
      KeyPair keyPair = generator.generateKeyPair();
      X500Name subject = new X500Name("CN=" + hostNames[0]);
      Instant now = Instant.now();
      X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
          subject,
          new BigInteger(64, new SecureRandom()),
          Date.from(now.minus(Duration.ofHours(1))),
          Date.from(now.plus(Duration.ofDays(365))),
          subject,
          keyPair.getPublic());
      List<GeneralName> names = new ArrayList<>();
      for (String host : hostNames) {
        names.add(new GeneralName(GeneralName.dNSName, host));
      }
      builder.addExtension(Extension.subjectAlternativeName, false,
          new GeneralNames(names.toArray(new GeneralName[0])));
      builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
      ContentSigner signer = new JcaContentSignerBuilder("SHA256withECDSA")
          .build(keyPair.getPrivate());
      X509Certificate cert = new JcaX509CertificateConverter()
          .getCertificate(builder.build(signer));
      return new SelfSignedCertificate(keyPair, cert);
    } catch (GeneralSecurityException | OperatorCreationException | IOException e) {
      throw new IllegalStateException("cannot generate a self-signed certificate", e);
    }
  }

  /**
   * The certificate.
   *
   * @return the X.509 certificate
   */
  public X509Certificate certificate() {
    return certificate;
  }

  /**
   * The certificate in PEM form.
   *
   * @return the PEM text of the certificate
   */
  public String certificatePem() {
    return pem(certificate);
  }

  /**
   * The private key in PKCS#8 PEM form. Keep it secret even in development.
   *
   * @return the PEM text of the private key
   */
  public String privateKeyPem() {
    try {
      return pem(new JcaPKCS8Generator(keyPair.getPrivate(), null).generate());
    } catch (org.bouncycastle.util.io.pem.PemGenerationException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Writes {@code cert.pem} and {@code key.pem} into {@code directory}, creating it.
   *
   * @param directory the directory to write into
   * @throws IOException if the directory or a file cannot be written
   */
  public void writeTo(Path directory) throws IOException {
    Files.createDirectories(directory);
    Files.write(directory.resolve("cert.pem"), certificatePem().getBytes(StandardCharsets.US_ASCII));
    Files.write(directory.resolve("key.pem"), privateKeyPem().getBytes(StandardCharsets.US_ASCII));
  }

  /** A key store holding key and certificate under {@link Pem#KEY_ALIAS}. */
  KeyStore keyStore() {
    return Pem.keyStore(keyPair.getPrivate(), List.of(certificate));
  }

  private static String pem(Object o) {
    StringWriter out = new StringWriter();
    try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
      writer.writeObject(o);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toString();
  }
}
