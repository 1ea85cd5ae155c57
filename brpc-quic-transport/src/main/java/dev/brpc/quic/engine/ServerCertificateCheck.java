package dev.brpc.quic.engine;

import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * Verifies a server's certificate chain as a dial's {@link DialSpec} asks (its trust store, its
 * trust manager, or the JDK's default trust), and remembers what it saw, so that a failed dial
 * can say why in words a user can act on ({@link #explain}): the certificate is not trusted,
 * and what to configure; it has expired; it does not name the host dialled, and which names it
 * has. The TLS libraries under the engines report only "certificate verify failed" or their own
 * alert's class name.
 *
 * <p>An engine gives its TLS stack this trust manager and, when a dial fails, asks {@link
 * #explain} with the same key: the {@link SSLEngine} the check ran for where the TLS stack
 * passes one (one instance then serves many dials), or null for an instance used by one dial
 * only.
 *
 * <p>Thread-safe.
 */
public final class ServerCertificateCheck extends X509ExtendedTrustManager {
  /** The default trust, loaded once (it reads the JDK's CA file). */
  private static volatile X509TrustManager defaultTrust;

  private final X509TrustManager base;
  private final boolean trustConfigured;
  private final Map<Object, Outcome> outcomes = Collections.synchronizedMap(new WeakHashMap<>());

  private ServerCertificateCheck(X509TrustManager base, boolean trustConfigured) {
    this.base = base;
    this.trustConfigured = trustConfigured;
  }

  /**
   * The check for {@code spec} (not for insecure specs, which check nothing).
   *
   * @param spec the dial's trust settings
   * @return a new check
   * @throws GeneralSecurityException if the trust store or the JDK's default trust fails to load
   */
  public static ServerCertificateCheck of(DialSpec spec) throws GeneralSecurityException {
    if (spec.trustManager() != null) {
      return new ServerCertificateCheck(spec.trustManager(), true);
    }
    if (spec.trustStore() != null) {
      return new ServerCertificateCheck(trustManager(spec.trustStore()), true);
    }
    X509TrustManager d = defaultTrust;
    if (d == null) {
      d = trustManager(null);
      defaultTrust = d;
    }
    return new ServerCertificateCheck(d, false);
  }

  private static X509TrustManager trustManager(KeyStore store) throws GeneralSecurityException {
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(
        TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(store); // null: the JDK's default trust
    for (TrustManager tm : tmf.getTrustManagers()) {
      if (tm instanceof X509TrustManager) {
        return (X509TrustManager) tm;
      }
    }
    throw new GeneralSecurityException("no X509TrustManager in " + tmf.getAlgorithm());
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    check(engine, chain, () -> {
      if (base instanceof X509ExtendedTrustManager) {
        ((X509ExtendedTrustManager) base).checkServerTrusted(chain, authType, engine);
      } else {
        base.checkServerTrusted(chain, authType);
      }
    });
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
      throws CertificateException {
    check(null, chain, () -> {
      if (base instanceof X509ExtendedTrustManager) {
        ((X509ExtendedTrustManager) base).checkServerTrusted(chain, authType, socket);
      } else {
        base.checkServerTrusted(chain, authType);
      }
    });
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType)
      throws CertificateException {
    check(null, chain, () -> base.checkServerTrusted(chain, authType));
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
      throws CertificateException {
    throw new CertificateException("a dialer's trust manager checks servers only");
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    throw new CertificateException("a dialer's trust manager checks servers only");
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType)
      throws CertificateException {
    throw new CertificateException("a dialer's trust manager checks servers only");
  }

  @Override
  public X509Certificate[] getAcceptedIssuers() {
    return base.getAcceptedIssuers();
  }

  /** The latest outcome, for a check used by one dial only (asked with a null key). */
  private volatile Outcome last;

  private interface Check {
    void run() throws CertificateException;
  }

  private void check(Object key, X509Certificate[] chain, Check check)
      throws CertificateException {
    try {
      check.run();
      last = new Outcome(chain, null);
      outcomes.put(key == null ? this : key, last);
    } catch (CertificateException e) {
      last = new Outcome(chain, e);
      outcomes.put(key == null ? this : key, last);
      throw e;
    }
  }

  /** What the check saw for {@code key}: the server's chain and why it was refused. */
  private record Outcome(X509Certificate[] chain, CertificateException refused) {}

  /**
   * The exception the check threw for {@code key} (null: one instance, one dial), if any.
   *
   * @param key the {@link SSLEngine} the check ran for, or null
   * @return the refusal, or null if the check accepted the chain or did not run for {@code key}
   */
  public CertificateException refusal(Object key) {
    Outcome o = key == null ? last : outcomes.get(key);
    return o == null ? null : o.refused;
  }

  /**
   * Why the dial that ran this check for {@code key} failed, for people, or null if the check
   * has nothing to say: it refused the server's chain (why, and what to configure), or it
   * accepted it but the TLS stack then found the host name missing from it ({@code
   * hostMismatch}: the engine's TLS error says so). {@code host} is the name dialled.
   *
   * @param key the {@link SSLEngine} the check ran for, or null
   * @param host the host name dialled
   * @param hostMismatch whether the TLS stack found the host name missing from the certificate
   * @return a sentence for the user, or null
   */
  public String explain(Object key, String host, boolean hostMismatch) {
    Outcome o = key == null ? last : outcomes.get(key);
    if (o == null || o.chain == null || o.chain.length == 0) {
      return null;
    }
    X509Certificate leaf = o.chain[0];
    if (o.refused == null) {
      return hostMismatch ? notForHost(leaf, host) : null;
    }
    Throwable expired = find(o.refused, CertificateExpiredException.class);
    if (expired != null || reason(o.refused) == CertPathValidatorException.BasicReason.EXPIRED) {
      return "the server's certificate (" + subject(leaf) + ") expired on " + leaf.getNotAfter();
    }
    if (find(o.refused, CertificateNotYetValidException.class) != null
        || reason(o.refused) == CertPathValidatorException.BasicReason.NOT_YET_VALID) {
      return "the server's certificate (" + subject(leaf) + ") is not valid before "
          + leaf.getNotBefore() + " (is this machine's clock right?)";
    }
    String message = String.valueOf(o.refused.getMessage());
    if (message.contains("No subject alternative") || message.contains("No name matching")) {
      return notForHost(leaf, host);
    }
    if (reason(o.refused) == CertPathValidatorException.BasicReason.INVALID_SIGNATURE
        || message.toLowerCase(java.util.Locale.ROOT).contains("signature")) {
      return "the server's certificate (" + subject(leaf) + ") has a signature that does not"
          + " verify: " + message;
    }
    if (message.contains("certification path") || find(o.refused,
        CertPathValidatorException.class) != null) {
      String which = "the server's certificate (" + subject(leaf) + ", issued by "
          + leaf.getIssuerX500Principal().getName() + ") is not trusted";
      return trustConfigured
          ? which + ": none of the certificates this channel trusts issued it; trust the"
              + " server's certificate or its issuer (trustCertificate(s), trustStore or"
              + " trustManager on the builder)"
          : which + ": no trust was configured, so the JDK's default certificate authorities"
              + " were used; for a self-signed or private certificate call trustCertificate(s)"
              + " or trustStore on the builder";
    }
    return "the server's certificate (" + subject(leaf) + ") was refused: " + message;
  }

  private static String notForHost(X509Certificate leaf, String host) {
    List<String> names = names(leaf);
    boolean ip = host.indexOf(':') >= 0 || host.matches("[0-9.]+");
    String hint = ip && !names.isEmpty()
        ? "; dial one of those names, or give the server a certificate with this IP address"
        : "; dial one of those names, or give the server a certificate for " + host;
    return "the server's certificate is not for " + host + ": it names "
        + (names.isEmpty() ? "no host (no subject alternative names)" : String.join(", ", names))
        + hint;
  }

  private static List<String> names(X509Certificate leaf) {
    List<String> names = new ArrayList<>();
    try {
      Collection<List<?>> sans = leaf.getSubjectAlternativeNames();
      if (sans != null) {
        for (List<?> san : sans) {
          Object type = san.get(0);
          if (Integer.valueOf(2).equals(type) || Integer.valueOf(7).equals(type)) { // DNS, IP
            names.add(String.valueOf(san.get(1)));
          }
        }
      }
    } catch (CertificateParsingException e) {
      // no names to show
    }
    return names;
  }

  private static String subject(X509Certificate c) {
    return c.getSubjectX500Principal().getName();
  }

  private static CertPathValidatorException.Reason reason(Throwable t) {
    CertPathValidatorException e = find(t, CertPathValidatorException.class);
    return e == null ? null : e.getReason();
  }

  private static <T extends Throwable> T find(Throwable t, Class<T> type) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (type.isInstance(c)) {
        return type.cast(c);
      }
    }
    return null;
  }
}
