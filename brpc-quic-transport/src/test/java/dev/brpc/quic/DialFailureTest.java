package dev.brpc.quic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.quic.engine.DialException;
import dev.brpc.quic.engine.EngineLimits;
import dev.brpc.quic.engine.EngineListener;
import dev.brpc.quic.engine.ListenSpec;
import dev.brpc.quic.internal.Engines;
import dev.brpc.quic.internal.Pem;
import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.math.BigInteger;
import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A dial that fails says why, in words a user can act on, with the real exception as the
 * cause, and without a stack trace in the log (issue 20; README, Troubleshooting). Runs on
 * each engine (brpc-quic-netty runs it again on the native one).
 */
class DialFailureTest {
  private static final SelfSignedCertificate LOCALHOST = SelfSignedCertificate.generate("localhost");
  private static final SelfSignedCertificate OTHER = SelfSignedCertificate.generate("other.example");
  private static final String ENGINE = System.getProperty("brpc.quic.engine", "kwik");

  private final List<Server> servers = new CopyOnWriteArrayList<>();
  private final List<LogRecord> logged = new CopyOnWriteArrayList<>();
  private final Handler capture = new Handler() {
    @Override
    public void publish(LogRecord r) {
      if (r.getLevel().intValue() >= Level.WARNING.intValue()) {
        logged.add(r);
      }
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
  };

  @BeforeEach
  void captureLogs() {
    Logger.getLogger("").addHandler(capture);
  }

  @AfterEach
  void tearDown() throws Exception {
    Logger.getLogger("").removeHandler(capture);
    for (Server s : servers) {
      s.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  private int server(SelfSignedCertificate cert) throws Exception {
    Server s = QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .useTransportSecurity(cert).addService(new EchoService()).build().start();
    servers.add(s);
    return s.getPort();
  }

  @Test
  void untrustedCertificate_saysSoAndWhatToTrust() throws Exception {
    Status s = fail(QuicChannelBuilder.forAddress("localhost", server(LOCALHOST))
        .trustCertificate(OTHER.certificate()));
    assertDescribes(s, "is not trusted", "none of the certificates this channel trusts",
        "trustCertificate");
    assertCause(s, CertificateException.class);
  }

  @Test
  void noTrustConfigured_saysWhichBuilderCallFixesIt() throws Exception {
    Status s = fail(QuicChannelBuilder.forAddress("localhost", server(LOCALHOST)));
    assertDescribes(s, "is not trusted", "no trust was configured", "trustCertificate(s)");
    assertCause(s, CertificateException.class);
  }

  @Test
  void certificateForAnotherHost_namesBoth() throws Exception {
    Status s = fail(QuicChannelBuilder.forAddress("localhost", server(OTHER))
        .trustCertificate(OTHER.certificate()));
    assertDescribes(s, "not for localhost", "it names other.example");
  }

  @Test
  void dialledByIpAddress_withACertificateForAName_namesBoth() throws Exception {
    Status s = fail(QuicChannelBuilder.forAddress("127.0.0.1", server(LOCALHOST))
        .trustCertificate(LOCALHOST.certificate()));
    assertDescribes(s, "not for 127.0.0.1", "it names localhost", "IP address");
  }

  /**
   * A certificate past its validity, issued by a trusted CA. (A trusted self-signed certificate
   * is a trust anchor, whose dates the JDK does not check.)
   */
  @Test
  void expiredCertificate_saysWhen() throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
    generator.initialize(256);
    KeyPair caKey = generator.generateKeyPair();
    KeyPair leafKey = generator.generateKeyPair();
    Instant now = Instant.now();
    X500Name caName = new X500Name("CN=test CA");
    X509v3CertificateBuilder ca = new JcaX509v3CertificateBuilder(caName, BigInteger.ONE,
        Date.from(now.minus(Duration.ofDays(30))), Date.from(now.plus(Duration.ofDays(30))),
        caName, caKey.getPublic())
        .addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
    X509v3CertificateBuilder leaf = new JcaX509v3CertificateBuilder(caName, BigInteger.TWO,
        Date.from(now.minus(Duration.ofDays(30))), Date.from(now.minus(Duration.ofDays(1))),
        new X500Name("CN=localhost"), leafKey.getPublic())
        .addExtension(Extension.subjectAlternativeName, false,
            new GeneralNames(new GeneralName(GeneralName.dNSName, "localhost")));
    ContentSigner signer = new JcaContentSignerBuilder("SHA256withECDSA")
        .build(caKey.getPrivate());
    JcaX509CertificateConverter converter = new JcaX509CertificateConverter();
    X509Certificate caCert = converter.getCertificate(ca.build(signer));
    X509Certificate leafCert = converter.getCertificate(leaf.build(signer));
    Server server = QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .useTransportSecurity(pem(leafCert), pem(leafKey.getPrivate()))
        .addService(new EchoService()).build().start();
    servers.add(server);
    Status s = fail(QuicChannelBuilder.forAddress("localhost", server.getPort())
        .trustCertificate(caCert));
    assertDescribes(s, "expired on");
    assertCause(s, CertificateException.class);
  }

  private static java.io.InputStream pem(Object o) throws java.io.IOException {
    java.io.StringWriter out = new java.io.StringWriter();
    try (JcaPEMWriter w = new JcaPEMWriter(out)) {
      w.writeObject(o instanceof java.security.PrivateKey
          ? new org.bouncycastle.openssl.jcajce.JcaPKCS8Generator((java.security.PrivateKey) o,
              null).generate()
          : o);
    }
    return new java.io.ByteArrayInputStream(out.toString().getBytes(
        java.nio.charset.StandardCharsets.US_ASCII));
  }

  @Test
  void nothingListens_isRefusedAtOnceOrSaysWhatToCheck() throws Exception {
    // A UDP port and QUIC packets: over the tcp engine (which runs this suite too) there are
    // neither; its own failures are TcpDialFailureTest's.
    org.junit.jupiter.api.Assumptions.assumeFalse("tcp".equals(
        System.getProperty("brpc.quic.engine")), "QUIC only");
    int closed;
    try (DatagramSocket d = new DatagramSocket(0)) {
      closed = d.getLocalPort();
    }
    QuicChannelBuilder b = QuicChannelBuilder.forAddress("localhost", closed)
        .trustCertificate(LOCALHOST.certificate());
    if (ENGINE.equals("kwik")) {
      // The connect timeout is longer than the call's deadline: only the OS's ICMP port
      // unreachable can make the call fail UNAVAILABLE (RELIABILITY.md has no other way).
      Status s = fail(b.connectTimeout(60, TimeUnit.SECONDS));
      assertDescribes(s, "connection refused", "nothing listens on UDP port " + closed);
    } else {
      // The native engine's UDP socket is shared and unconnected: it does not see the ICMP
      // (README, Troubleshooting), so the connect timeout ends the dial, with a hint.
      Status s = fail(b.connectTimeout(500, TimeUnit.MILLISECONDS));
      assertDescribes(s, "no answer within the connect timeout", "firewall", "TCP-only");
    }
  }

  /**
   * A QUIC server that speaks another protocol (here one that only accepts ALPN "h3") refuses
   * the TLS handshake with no_application_protocol: the caller is told it is not a brpc server.
   */
  @Test
  void aQuicServerOfAnotherProtocol_saysItIsNotBrpc() throws Exception {
    EngineListener other = Engines.choose(ENGINE).listen(new ListenSpec(
        new InetSocketAddress("127.0.0.1", 0), "h3",
        Pem.keyStore(Pem.readPrivateKey(new java.io.ByteArrayInputStream(
            LOCALHOST.privateKeyPem().getBytes(java.nio.charset.StandardCharsets.US_ASCII))),
            List.of(LOCALHOST.certificate())),
        Pem.KEY_ALIAS, Pem.keyPassword(), new EngineLimits(TimeUnit.SECONDS.toNanos(30),
            1 << 20, 10 << 20, 100, 2)), c -> c.close(0, "not for brpc"));
    try {
      Status s = fail(QuicChannelBuilder.forAddress("localhost", other.localAddress().getPort())
          .trustCertificate(LOCALHOST.certificate()));
      assertDescribes(s, "does not speak this protocol", "no_application_protocol", "ALPN");
      assertCause(s, DialException.class);
    } finally {
      other.close();
    }
  }

  /**
   * A server that speaks only other QUIC versions answers the client's Initial with a Version
   * Negotiation packet (RFC 9000, section 17.2.1) listing them: the caller is told the versions
   * do not match, not that nothing answered.
   */
  @Test
  void aServerOfAnotherQuicVersion_saysTheVersionsDoNotMatch() throws Exception {
    // A UDP port and QUIC packets: over the tcp engine (which runs this suite too) there are
    // neither; its own failures are TcpDialFailureTest's.
    org.junit.jupiter.api.Assumptions.assumeFalse("tcp".equals(
        System.getProperty("brpc.quic.engine")), "QUIC only");
    try (DatagramSocket fake = new DatagramSocket(0, java.net.InetAddress.getLoopbackAddress())) {
      Thread responder = new Thread(() -> answerWithVersionNegotiation(fake), "fake-vn-server");
      responder.setDaemon(true);
      responder.start();
      Status s = fail(QuicChannelBuilder.forAddress("localhost", fake.getLocalPort())
          .trustCertificate(LOCALHOST.certificate()).connectTimeout(60, TimeUnit.SECONDS));
      if (ENGINE.equals("kwik")) {
        assertDescribes(s, "QUIC version mismatch", "the server speaks 0x1a2a3a4a", "client v1");
      } else { // quiche does not say which versions the server listed
        assertDescribes(s, "QUIC version mismatch", "client v1");
      }
      assertCause(s, DialException.class);
    }
  }

  /**
   * A server that answers, but whose answers never make a handshake (here: well-formed Initial
   * headers with undecryptable contents), ends the dial at the handshake timeout, and the caller
   * is told the handshake did not finish, not that nothing answered. kwik only: the native
   * engine counts only packets quiche could read as an answer, so there this is a dial with no
   * answer (the test above).
   */
  @Test
  void aServerThatAnswersButNeverCompletesTheHandshake_saysSo() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(ENGINE.equals("kwik"));
    try (DatagramSocket fake = new DatagramSocket(0, java.net.InetAddress.getLoopbackAddress())) {
      Thread responder = new Thread(() -> answerWithJunk(fake), "fake-junk-server");
      responder.setDaemon(true);
      responder.start();
      Status s = failAsConfigured(QuicChannelBuilder.forAddress("localhost",
              fake.getLocalPort())
          .trustCertificate(LOCALHOST.certificate()).connectTimeout(1, TimeUnit.SECONDS)
          .handshakeTimeout(2, TimeUnit.SECONDS));
      assertDescribes(s, "the handshake did not finish within 2000 ms", "the server answered");
      assertCause(s, DialException.class);
    }
  }

  /** Answers every datagram with an Initial-looking datagram that cannot be decrypted. */
  private static void answerWithJunk(DatagramSocket socket) {
    java.util.Random random = new java.util.Random(7);
    answer(socket, (d, length) -> {
      byte[] junk = new byte[1200];
      random.nextBytes(junk);
      junk[0] = (byte) 0xc0; // long header, Initial
      junk[1] = 0;
      junk[2] = 0;
      junk[3] = 0;
      junk[4] = 1; // QUIC v1
      junk[5] = 8; // destination connection id: 8 bytes
      junk[14] = 8; // source connection id: 8 bytes
      return junk;
    });
  }

  /** Answers every long-header datagram with a Version Negotiation packet for 0x1a2a3a4a. */
  private static void answerWithVersionNegotiation(DatagramSocket socket) {
    answer(socket, (d, length) -> {
      if (length < 7 || (d[0] & 0x80) == 0) {
        return null;
      }
      int dcidLength = d[5] & 0xff;
      int scidLength = d[6 + dcidLength] & 0xff;
      java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
      out.write(0x80 | 0x2a); // long header; the other bits are unused in this packet
      out.writeBytes(new byte[4]); // version 0: Version Negotiation
      out.write(scidLength); // echo the client's connection ids, swapped
      out.write(d, 7 + dcidLength, scidLength);
      out.write(dcidLength);
      out.write(d, 6, dcidLength);
      out.writeBytes(new byte[] {0x1a, 0x2a, 0x3a, 0x4a}); // the one version "supported"
      return out.toByteArray();
    });
  }

  /** A fake server: sends {@code reply}'s answer (none if null) to every datagram, until closed. */
  private static void answer(DatagramSocket socket,
      java.util.function.BiFunction<byte[], Integer, byte[]> reply) {
    byte[] buffer = new byte[2048];
    while (!socket.isClosed()) {
      java.net.DatagramPacket in = new java.net.DatagramPacket(buffer, buffer.length);
      try {
        socket.receive(in);
        byte[] out = reply.apply(in.getData(), in.getLength());
        if (out != null) {
          socket.send(new java.net.DatagramPacket(out, out.length, in.getSocketAddress()));
        }
      } catch (IOException e) {
        return; // closed
      }
    }
  }

  /** A server shutting down refuses new connections at once, and says so once, in words. */
  @Test
  void serverShuttingDown_refusesNewConnections_inWords() throws Exception {
    Server server = QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .useTransportSecurity(LOCALHOST).addService(new EchoService()).build().start();
    servers.add(server);
    ManagedChannel first = QuicChannelBuilder.forAddress("localhost", server.getPort())
        .trustCertificate(LOCALHOST.certificate()).build();
    try {
      // A call left open keeps the server draining (with none, it would close its port).
      java.util.concurrent.CompletableFuture<Msg> echoed = new java.util.concurrent.CompletableFuture<>();
      io.grpc.stub.StreamObserver<Msg> open = EchoGrpc.newStub(first).bidi(
          new io.grpc.stub.StreamObserver<Msg>() {
            @Override
            public void onNext(Msg m) {
              echoed.complete(m);
            }

            @Override
            public void onError(Throwable t) {
              echoed.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {}
          });
      open.onNext(Msg.newBuilder().setText("x").build());
      echoed.get(20, TimeUnit.SECONDS);
      server.shutdown(); // draining: the first connection stays, new ones are refused
      Status s = fail(QuicChannelBuilder.forAddress("localhost", server.getPort())
          .trustCertificate(LOCALHOST.certificate()));
      assertDescribes(s, "refused", "shutting down or not accepting connections");
      open.onCompleted();
    } finally {
      first.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  /**
   * A server that refuses a client (its ConnectHandler, as brpc's authenticator does): the
   * client's calls fail with the server's status and words; the server's operator gets one
   * WARNING line naming the peer and the reason, no stack trace, however often that host
   * retries (PeerFailureLog).
   */
  @Test
  void refusedByTheServer_theCallerGetsItsReason_theOperatorOneLine() throws Exception {
    Server s = QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .useTransportSecurity(LOCALHOST).addService(new EchoService())
        .connectHandler((metadata, address) -> {
          throw Status.UNAUTHENTICATED.withDescription("bad token").asException();
        })
        .build().start();
    servers.add(s);
    for (int i = 0; i < 3; i++) {
      ManagedChannel channel = QuicChannelBuilder.forAddress("localhost", s.getPort())
          .trustCertificate(LOCALHOST.certificate()).build();
      try {
        StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(
            StatusRuntimeException.class, () -> EchoGrpc.newBlockingStub(channel)
                .withDeadlineAfter(40, TimeUnit.SECONDS).unary(Msg.newBuilder().setText("x")
                    .build()));
        assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode(),
            e.getStatus().toString());
        assertDescribes(e.getStatus(), "bad token");
      } finally {
        channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      }
    }
    List<LogRecord> lines = logged.stream()
        .filter(r -> r.getLoggerName().endsWith("ListeningServer")).toList();
    assertEquals(1, lines.size(), lines.stream().map(LogRecord::getMessage).toList().toString());
    assertTrue(lines.get(0).getMessage().matches("/127\\.0\\.0\\.1:\\d+: refused:"
        + " UNAUTHENTICATED: bad token"), lines.get(0).getMessage());
    assertEquals(null, lines.get(0).getThrown());
  }

  /** Makes one call, which must fail UNAVAILABLE (never at its deadline); returns its Status. */
  private Status fail(QuicChannelBuilder builder) throws Exception {
    return failAsConfigured(builder.handshakeTimeout(30, TimeUnit.SECONDS));
  }

  /** A call on {@code builder}'s channel, as it is configured, must fail UNAVAILABLE. */
  private Status failAsConfigured(QuicChannelBuilder builder) throws Exception {
    ManagedChannel channel = builder.build();
    try {
      StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(
          StatusRuntimeException.class, () -> EchoGrpc.newBlockingStub(channel)
              .withDeadlineAfter(40, TimeUnit.SECONDS).unary(Msg.newBuilder().setText("x")
                  .build()));
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.getStatus().toString());
      return e.getStatus();
    } finally {
      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  private void assertDescribes(Status s, String... parts) {
    String d = String.valueOf(s.getDescription());
    for (String part : parts) {
      assertTrue(d.contains(part), "\"" + part + "\" not in: " + d);
    }
    for (String noise : List.of("tech.kwik", "agent15", "OPENSSL", "()")) {
      assertTrue(!d.contains(noise), "\"" + noise + "\" in: " + d);
    }
    List<String> traces = logged.stream().filter(r -> r.getThrown() != null)
        .map(r -> r.getLoggerName() + ": " + r.getMessage()).toList();
    assertEquals(List.of(), traces, "stack traces logged at WARNING or above");
  }

  private static void assertCause(Status s, Class<? extends Throwable> type) {
    assertNotNull(s.getCause(), "no cause");
    for (Throwable t = s.getCause(); t != null; t = t.getCause()) {
      if (type.isInstance(t)) {
        return;
      }
    }
    throw new AssertionError("no " + type.getSimpleName() + " in the causes of " + s);
  }
}
