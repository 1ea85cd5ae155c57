package dev.brpc.tcp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.quic.SelfSignedCertificate;
import dev.brpc.quic.engine.DialException;
import dev.brpc.quic.engine.DialSpec;
import dev.brpc.quic.engine.EngineConnection;
import dev.brpc.quic.engine.EngineLimits;
import dev.brpc.quic.engine.EngineListener;
import dev.brpc.quic.engine.ListenSpec;
import dev.brpc.quic.internal.Pem;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.ByteArrayInputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * What only the tcp engine has: its dial failures in words, and identity bound to the TCP
 * connection (a token replayed from another TCP connection is refused). The transport's suite
 * runs over this engine too (this module's surefire configuration).
 */
class TcpEngineTest {
  private static final SelfSignedCertificate CERT = SelfSignedCertificate.generate("localhost");
  private static final EngineLimits LIMITS =
      new EngineLimits(TimeUnit.SECONDS.toNanos(30), 1 << 20, 1 << 24, 100, 10);
  private final TcpEngine engine = new TcpEngine(null);
  private EngineListener listener;
  private Server plain;

  @AfterEach
  void tearDown() {
    if (listener != null) {
      listener.close();
    }
    if (plain != null) {
      plain.shutdownNow();
    }
  }

  private static KeyStore keyStore() throws Exception {
    return Pem.keyStore(Pem.readPrivateKey(new ByteArrayInputStream(
        CERT.privateKeyPem().getBytes(StandardCharsets.US_ASCII))), List.of(CERT.certificate()));
  }

  private static DialSpec spec(int port) {
    return new DialSpec(new InetSocketAddress("127.0.0.1", port), "localhost", "brpc/1",
        Pem.trustStore(List.of(CERT.certificate())), null, false,
        TimeUnit.SECONDS.toNanos(10), TimeUnit.SECONDS.toNanos(10), LIMITS);
  }

  private static DialException dialFailure(CompletableFuture<EngineConnection> f)
      throws Exception {
    ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(
        ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
    return assertInstanceOf(DialException.class, e.getCause());
  }

  @Test
  void nothingListens_refusedAtOnce_saysSo() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    DialException e = dialFailure(engine.dial(spec(port)));
    assertEquals(DialException.Reason.REFUSED_BY_NETWORK, e.reason(), e.getMessage());
    assertTrue(e.getMessage().contains("connection refused"), e.getMessage());
  }

  @Test
  void aPlainGrpcServer_saysItServesNoTunnel() throws Exception {
    plain = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .sslContext(GrpcSslContexts.forServer(new ByteArrayInputStream(
            CERT.certificatePem().getBytes(StandardCharsets.US_ASCII)), new ByteArrayInputStream(
            CERT.privateKeyPem().getBytes(StandardCharsets.US_ASCII))).build())
        .build().start();
    DialException e = dialFailure(engine.dial(spec(plain.getPort())));
    assertTrue(e.getMessage().contains("serves no brpc tunnel"), e.getMessage());
  }

  @Test
  void aServerCertificateForAnotherName_saysWhichNamesItHas() throws Exception {
    listen();
    DialSpec wrongHost = new DialSpec(spec(listener.localAddress().getPort()).target(),
        "example.com", "brpc/1", Pem.trustStore(List.of(CERT.certificate())), null, false,
        TimeUnit.SECONDS.toNanos(10), TimeUnit.SECONDS.toNanos(10), LIMITS);
    DialException e = dialFailure(engine.dial(wrongHost));
    assertEquals(DialException.Reason.TLS, e.reason(), e.getMessage());
    assertTrue(e.getMessage().contains("example.com"), e.getMessage());
  }

  @Test
  void aTokenReplayedFromAnotherTcpConnection_isRefused() throws Exception {
    LinkedBlockingQueue<EngineConnection> accepted = new LinkedBlockingQueue<>();
    listen(accepted);
    int port = listener.localAddress().getPort();
    TunnelConnection victim = (TunnelConnection) engine.dial(spec(port)).get(30, TimeUnit.SECONDS);
    ManagedChannel stranger = NettyChannelBuilder.forAddress("127.0.0.1", port)
        .sslContext(GrpcSslContexts.forClient().trustManager(CERT.certificate()).build())
        .overrideAuthority("localhost:" + port)
        .build();
    try {
      CompletableFuture<Status> closed = new CompletableFuture<>();
      ClientCall<byte[], byte[]> call = stranger.newCall(Tunnel.STREAM, CallOptions.DEFAULT);
      call.start(new ClientCall.Listener<>() {
        @Override
        public void onClose(Status status, Metadata trailers) {
          closed.complete(status);
        }
      }, new Metadata());
      call.sendMessage(Tunnel.frame(Tunnel.ATTACH, victim.token, 0));
      call.request(1);
      Status s = closed.get(30, TimeUnit.SECONDS);
      assertEquals(Status.Code.PERMISSION_DENIED, s.getCode(), s.toString());
      assertTrue(!victim.isClosed(), "the victim's connection was hurt");
    } finally {
      stranger.shutdownNow();
      victim.close(0, "");
    }
  }

  @Test
  void aMalformedHello_getsProtocolViolation_andTheServerServesOthers() throws Exception {
    listen();
    int port = listener.localAddress().getPort();
    ManagedChannel raw = rawChannel(port);
    try {
      RawCall connect = new RawCall(raw, Tunnel.CONNECT);
      connect.call.sendMessage(new byte[] {Tunnel.HELLO, (byte) 0xff});
      byte[] close = connect.frames.poll(30, TimeUnit.SECONDS);
      assertEquals(Tunnel.CLOSE, close[0]);
      assertEquals(1, close[1], "a transport close");
      assertEquals(0xa, close[2], "PROTOCOL_VIOLATION");
      assertEquals(Status.Code.OK, connect.closed.get(30, TimeUnit.SECONDS).getCode());
      EngineConnection good = engine.dial(spec(port)).get(30, TimeUnit.SECONDS);
      good.close(0, "");
    } finally {
      raw.shutdownNow();
    }
  }

  @Test
  void aStreamBeyondTheCredit_closesThatConnectionOnly() throws Exception {
    LinkedBlockingQueue<EngineConnection> accepted = new LinkedBlockingQueue<>();
    listen(accepted);
    int port = listener.localAddress().getPort();
    ManagedChannel raw = rawChannel(port);
    try {
      RawCall connect = new RawCall(raw, Tunnel.CONNECT);
      connect.call.sendMessage(Tunnel.frame(Tunnel.HELLO,
          "brpc/1".getBytes(StandardCharsets.US_ASCII), Tunnel.VERSION, 10, 10));
      byte[] welcome = connect.frames.poll(30, TimeUnit.SECONDS);
      assertEquals(Tunnel.WELCOME, welcome[0]);
      byte[] token = java.util.Arrays.copyOfRange(welcome, welcome.length - Tunnel.TOKEN_SIZE,
          welcome.length);
      EngineConnection serverSide = accepted.poll(30, TimeUnit.SECONDS);
      CompletableFuture<dev.brpc.quic.engine.CloseInfo> why = new CompletableFuture<>();
      serverSide.start(new dev.brpc.quic.engine.ConnectionHandler() {
        @Override
        public void peerStreamOpened(dev.brpc.quic.engine.EngineStream stream) {}

        @Override
        public void closed(dev.brpc.quic.engine.CloseInfo info) {
          why.complete(info);
        }
      });
      RawCall stream = new RawCall(raw, Tunnel.STREAM);
      stream.call.sendMessage(Tunnel.frame(Tunnel.ATTACH, token, 1000L << 2)); // credit: 100
      dev.brpc.quic.engine.CloseInfo info = why.get(30, TimeUnit.SECONDS);
      assertTrue(info.reason().contains("beyond the stream credit"), info.toString());
      byte[] close = connect.frames.poll(30, TimeUnit.SECONDS);
      assertEquals(Tunnel.CLOSE, close[0]);
      assertEquals(0xa, close[2], "PROTOCOL_VIOLATION");
      EngineConnection other = engine.dial(spec(port)).get(30, TimeUnit.SECONDS);
      other.close(0, "");
    } finally {
      raw.shutdownNow();
    }
  }

  private static ManagedChannel rawChannel(int port) throws Exception {
    return NettyChannelBuilder.forAddress("127.0.0.1", port)
        .sslContext(GrpcSslContexts.forClient().trustManager(CERT.certificate()).build())
        .overrideAuthority("localhost:" + port)
        .build();
  }

  /** A tunnel call driven by hand: what it receives, and how it ended. */
  private static final class RawCall {
    final ClientCall<byte[], byte[]> call;
    final LinkedBlockingQueue<byte[]> frames = new LinkedBlockingQueue<>();
    final CompletableFuture<Status> closed = new CompletableFuture<>();

    RawCall(ManagedChannel channel, io.grpc.MethodDescriptor<byte[], byte[]> method) {
      call = channel.newCall(method, CallOptions.DEFAULT);
      call.start(new ClientCall.Listener<>() {
        @Override
        public void onMessage(byte[] f) {
          frames.add(f);
          call.request(1);
        }

        @Override
        public void onClose(Status status, Metadata trailers) {
          closed.complete(status);
        }
      }, new Metadata());
      call.request(1);
    }
  }

  private void listen() throws Exception {
    listen(new LinkedBlockingQueue<>());
  }

  private void listen(LinkedBlockingQueue<EngineConnection> accepted) throws Exception {
    listener = engine.listen(new ListenSpec(new InetSocketAddress("127.0.0.1", 0), "brpc/1",
        keyStore(), Pem.KEY_ALIAS, Pem.keyPassword(), LIMITS), accepted::add);
  }
}
