package dev.brpc.tcp;

import dev.brpc.quic.engine.DialException;
import dev.brpc.quic.engine.DialSpec;
import dev.brpc.quic.engine.ServerCertificateCheck;
import io.grpc.Status;
import java.net.ConnectException;
import javax.net.ssl.SSLException;

/** A failed TCP dial in words a user can act on. Stateless. */
final class DialFailures {
  private DialFailures() {}

  static DialException of(Status status, DialSpec spec, ServerCertificateCheck check) {
    String where = spec.host() + " TCP port " + spec.target().getPort();
    Throwable cause = status.asException();
    for (Throwable t = status.getCause(); t != null; t = t.getCause()) {
      if (t.getClass().getSimpleName().equals("ConnectTimeoutException")) {
        return new DialException(DialException.Reason.NO_ANSWER, "no answer from " + where
            + " within the connect timeout (a firewall dropping TCP, or the host is down)", t);
      }
      if (t instanceof ConnectException) {
        return new DialException(DialException.Reason.REFUSED_BY_NETWORK, "nothing listens on "
            + where + " (connection refused): is the server running, with its TCP side on?", t);
      }
      if (t instanceof SSLException) {
        String message = String.valueOf(t.getMessage());
        String why = check == null ? null : check.explain(null, spec.host(),
            message.contains("subject alternative") || message.contains("No name matching")
                || message.contains("match"));
        java.security.cert.CertificateException refused =
            check == null ? null : check.refusal(null);
        DialException d = new DialException(DialException.Reason.TLS,
            why != null ? why : "TLS handshake with " + where + " failed: " + message,
            refused != null ? refused : t);
        if (refused != null) {
          d.addSuppressed(t);
        }
        return d;
      }
    }
    if (status.getCode() == Status.Code.UNIMPLEMENTED) {
      return new DialException(DialException.Reason.OTHER, where + " serves no brpc tunnel: a"
          + " plain gRPC server, or a BrpcServer built without tcp()", cause);
    }
    return new DialException(DialException.Reason.OTHER, "TCP dial to " + where + " failed: "
        + status.getCode() + (status.getDescription() == null ? ""
        : " " + status.getDescription()), cause);
  }
}
