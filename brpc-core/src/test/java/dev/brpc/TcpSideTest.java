package dev.brpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.test.AgentGrpc;
import dev.brpc.test.HubGrpc;
import dev.brpc.test.Req;
import io.grpc.ChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.ByteArrayInputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The server's TCP side ({@code BrpcServer.Builder.tcp}): plain grpc-java clients over
 * HTTP/2 and TLS (NettyChannelBuilder) call the same services, through the same interceptors
 * and limits and the same director, and cannot be called back.
 */
@org.junit.jupiter.api.extension.ExtendWith(dev.brpc.fixtures.ThreadDumpOnFailure.class)
class TcpSideTest {
  private Fixture f;
  private ManagedChannel plain;

  @AfterEach
  void tearDown() throws Exception {
    if (plain != null) {
      plain.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
    if (f != null) {
      f.close();
    }
  }

  private static Req text(String text) {
    return Req.newBuilder().setText(text).build();
  }

  /** A plain grpc-java channel over TCP to the server's TCP side, trusting the fixture's cert. */
  private ManagedChannel plainChannel() throws java.io.IOException {
    ChannelCredentials tls = TlsChannelCredentials.newBuilder().trustManager(
        new ByteArrayInputStream(Fixture.CERT.certificatePem().getBytes(StandardCharsets.US_ASCII)))
        .build();
    plain = NettyChannelBuilder.forAddress("localhost", f.server.tcpPort(), tls).build();
    return plain;
  }

  private HubGrpc.HubBlockingStub plainHub() throws java.io.IOException {
    return HubGrpc.newBlockingStub(plainChannel()).withDeadlineAfter(20, TimeUnit.SECONDS);
  }

  @Test
  void aPlainGrpcClientOverTcp_callsTheServer_andIsToldItCannotBeCalledBack() throws Exception {
    f = new Fixture(b -> b.tcp(new InetSocketAddress("127.0.0.1", 0)));
    BrpcClient ada = f.connect("ada");

    String answer = plainHub().call(text("callback-status")).getText();
    assertTrue(answer.startsWith("FAILED_PRECONDITION: ") && answer.contains("plain gRPC client"
        + " over TCP") && answer.contains("cannot be called back"), answer);
    // A brpc client over QUIC, at the same time, is called back as before.
    assertEquals("OK ada", Fixture.hub(ada).call(text("callback-status")).getText());
  }

  @Test
  void byDefault_theTcpPortHasTheUdpPortsNumber() throws Exception {
    f = new Fixture(BrpcServer.Builder::tcp);
    assertEquals(f.server.port(), f.server.tcpPort());
    assertEquals(Status.Code.FAILED_PRECONDITION.toString(),
        plainHub().call(text("callback-status")).getText().split(":")[0]);
  }

  @Test
  void theServersInterceptorsAndLimits_applyOverTcp() throws Exception {
    AtomicInteger intercepted = new AtomicInteger();
    ServerInterceptor counting = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        intercepted.incrementAndGet();
        return next.startCall(call, headers);
      }
    };
    f = new Fixture(b -> b.intercept(counting).maxInboundMessageSize(1024)
        .tcp(new InetSocketAddress("127.0.0.1", 0)));
    plainHub().call(text("callback-status"));
    assertEquals(1, intercepted.get());

    StatusRuntimeException tooLarge = assertThrows(StatusRuntimeException.class,
        () -> plainHub().call(text("x".repeat(4096))));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, tooLarge.getStatus().getCode());
  }

  @Test
  void aPlainGrpcClientOverTcp_reachesAnAgentThroughTheDirector() throws Exception {
    f = new Fixture(b -> b.tcp(new InetSocketAddress("127.0.0.1", 0))
        .director(call -> Route.to(call.server().clients().get(0))));
    f.connect("grace");
    // Agent is the clients' service, not the server's: the director forwards the call.
    assertEquals("grace", AgentGrpc.newBlockingStub(plainChannel())
        .withDeadlineAfter(20, TimeUnit.SECONDS).name(Req.getDefaultInstance()).getText());
  }

  @Test
  void shutdown_stopsTheTcpSideToo() throws Exception {
    f = new Fixture(b -> b.tcp(new InetSocketAddress("127.0.0.1", 0)));
    HubGrpc.HubBlockingStub hub = plainHub();
    hub.call(text("callback-status"));
    f.server.shutdown();
    assertTrue(f.server.awaitTermination(20, TimeUnit.SECONDS));
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> HubGrpc.newBlockingStub(plain).withDeadlineAfter(20, TimeUnit.SECONDS)
            .call(text("callback-status")));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
  }
}
