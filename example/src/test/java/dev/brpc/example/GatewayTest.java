package dev.brpc.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.brpc.BrpcClient;
import dev.brpc.Route;
import dev.brpc.example.proto.NameReply;
import dev.brpc.example.proto.NameRequest;
import dev.brpc.example.proto.NamerGrpc;
import dev.brpc.quic.QuicChannelBuilder;
import dev.brpc.testing.BrpcServerExtension;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import java.io.OutputStream;
import java.io.PrintStream;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The server as a gateway (EXAMPLE.md, section 7, quotes it): a plain gRPC client, which is
 * no agent, calls {@code Namer} on the agent it chooses; the server implements no {@code Namer}
 * and forwards the call to that agent's connection.
 */
class GatewayTest {
  private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

  // [START gateway]
  static final Metadata.Key<String> AGENT =
      Metadata.Key.of("agent-id", Metadata.ASCII_STRING_MARSHALLER);

  @RegisterExtension
  final BrpcServerExtension<NamerGrpc.NamerBlockingStub> brpc =
      BrpcServerExtension.create(NamerGrpc::newBlockingStub)
          .configureServer(server -> server.director(call -> {
            // Calls for services the server does not implement: to the agent the header names.
            String id = call.headers().get(AGENT);
            if (id == null) {
              return null; // UNIMPLEMENTED, as without a director
            }
            return Route.to(call.server().client(UUID.fromString(id)).orElseThrow(
                () -> Status.NOT_FOUND.withDescription("no agent " + id).asException()));
          }));

  @Test
  void aPlainGrpcClient_callsTheAgentItChooses() {
    BrpcClient ada = brpc.connectClient(new NamerService(List.of("Ada"), QUIET));
    BrpcClient grace = brpc.connectClient(new NamerService(List.of("Grace"), QUIET));

    // Any gRPC client of the server: here grpc-java over QUIC, with no brpc in its code.
    ManagedChannel operator = brpc.register(
        QuicChannelBuilder.forAddress("localhost", brpc.server().port())
            .trustCertificate(brpc.certificate().certificate())
            .build());
    Metadata toGrace = new Metadata();
    toGrace.put(AGENT, grace.id().toString());
    NameReply reply = NamerGrpc.newBlockingStub(operator)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(toGrace))
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .name(NameRequest.getDefaultInstance());

    assertEquals("Grace", reply.getName());
  }
  // [END gateway]

  @Test
  void anAgentThatIsNotConnected_isNotFound() {
    ManagedChannel operator = brpc.register(
        QuicChannelBuilder.forAddress("localhost", brpc.server().port())
            .trustCertificate(brpc.certificate().certificate())
            .build());
    Metadata toNobody = new Metadata();
    toNobody.put(AGENT, UUID.randomUUID().toString());
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> NamerGrpc.newBlockingStub(operator)
            .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(toNobody))
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .name(NameRequest.getDefaultInstance()));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
  }
}
