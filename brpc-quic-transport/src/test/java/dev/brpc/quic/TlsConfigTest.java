package dev.brpc.quic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.ByteArrayInputStream;
import java.io.File;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every way to give the server its certificate and the client its trust, and a wrong trust. */
class TlsConfigTest {
  private static final SelfSignedCertificate CERT = QuicPair.CERT;
  private static final SelfSignedCertificate OTHER = SelfSignedCertificate.generate("localhost");
  @TempDir Path dir;
  private final List<Server> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();

  @AfterEach
  void tearDown() throws Exception {
    for (ManagedChannel c : channels) {
      c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    for (Server s : servers) {
      s.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  private int server(UnaryOperator<QuicServerBuilder> tls) throws Exception {
    Server s = tls.apply(QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)))
        .addService(new EchoService()).build().start();
    servers.add(s);
    return s.getPort();
  }

  private String call(int port, UnaryOperator<QuicChannelBuilder> trust) {
    ManagedChannel c = trust.apply(QuicChannelBuilder.forAddress("localhost", port)).build();
    channels.add(c);
    return EchoGrpc.newBlockingStub(c).withDeadlineAfter(20, TimeUnit.SECONDS)
        .unary(Msg.newBuilder().setText("tls").build()).getText();
  }

  @Test
  void pemFiles_onBothSides() throws Exception {
    CERT.writeTo(dir);
    File cert = dir.resolve("cert.pem").toFile();
    int port = server(s -> s.useTransportSecurity(cert, dir.resolve("key.pem").toFile()));
    assertEquals("tls", call(port, c -> c.trustCertificates(cert)));
  }

  @Test
  void pemStreams_onBothSides() throws Exception {
    int port = server(s -> s.useTransportSecurity(stream(CERT.certificatePem()),
        stream(CERT.privateKeyPem())));
    assertEquals("tls", call(port, c -> c.trustCertificates(stream(CERT.certificatePem()))));
  }

  @Test
  void keyStores_onBothSides() throws Exception {
    KeyStore keys = KeyStore.getInstance("PKCS12");
    keys.load(null, null);
    char[] password = "secret".toCharArray();
    keys.setKeyEntry("server", dev.brpc.quic.internal.Pem.readPrivateKey(
        stream(CERT.privateKeyPem())), password, new java.security.cert.Certificate[] {
            CERT.certificate()});
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    trust.setCertificateEntry("server", CERT.certificate());
    int port = server(s -> s.keyStore(keys, "server", password));
    assertEquals("tls", call(port, c -> c.trustStore(trust)));
  }

  @Test
  void pinnedCertificate_andDevelopmentOnlyTrustAll() throws Exception {
    int port = server(s -> s.useTransportSecurity(CERT));
    assertEquals("tls", call(port, c -> c.trustCertificate(CERT.certificate())));
    assertEquals("tls", call(port, QuicChannelBuilder::disableCertificateVerificationForDevelopmentOnly));
  }

  @Test
  void untrustedServerCertificate_failsUnavailable() throws Exception {
    int port = server(s -> s.useTransportSecurity(CERT));
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> call(port, c -> c.trustCertificate(OTHER.certificate())));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
  }

  private static ByteArrayInputStream stream(String pem) {
    return new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII));
  }
}
