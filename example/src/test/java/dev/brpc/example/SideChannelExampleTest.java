package dev.brpc.example;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.brpc.BrpcClient;
import dev.brpc.example.proto.NameReply;
import dev.brpc.example.proto.NameRequest;
import dev.brpc.example.proto.NamerGrpc;
import dev.brpc.quic.SideChannel;
import dev.brpc.quic.SideChannels;
import dev.brpc.testing.BrpcServerExtension;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Side channels (EXAMPLE.md, section 8, quotes it): the server asks an agent for a file; the
 * agent's handler sends it as raw bytes on a side channel of the call, beside its answer.
 */
class SideChannelExampleTest {
  private static final byte[] LOG = new byte[12 << 20]; // larger than gRPC's 4 MiB message limit

  static {
    for (int i = 0; i < LOG.length; i++) {
      LOG[i] = (byte) ('a' + i % 26);
    }
  }

  @RegisterExtension
  final BrpcServerExtension<NamerGrpc.NamerBlockingStub> brpc =
      BrpcServerExtension.create(NamerGrpc::newBlockingStub);
  private final ExecutorService executor = Executors.newCachedThreadPool();

  @AfterEach
  void tearDown() {
    executor.shutdownNow();
  }

  // [START sidechannel]
  /** On the agent: the handler sends the file on a side channel, then answers. */
  static final class AgentNamer extends NamerGrpc.NamerImplBase {
    @Override
    public void name(NameRequest request, StreamObserver<NameReply> responses) {
      try (SideChannel file = SideChannels.current().open()) {
        file.output().write(LOG); // raw bytes: no protobuf, no message size limit
      } catch (IOException e) {
        responses.onError(Status.UNAVAILABLE.withDescription("sending the file failed")
            .withCause(e).asException());
        return;
      }
      responses.onNext(NameReply.newBuilder().setName("agent.log").build());
      responses.onCompleted();
    }
  }

  @Test
  void theServerFetchesAFileFromAnAgent_besideTheCall() throws Exception {
    BrpcClient agent = brpc.connectClient(new AgentNamer());

    // On the server: the call carries side channels; another thread takes the one the agent
    // opens while the blocking call waits for the answer.
    SideChannels sides = SideChannels.create();
    Future<byte[]> file = executor.submit(() -> {
      try (SideChannel c = sides.accept()) {
        return c.input().readAllBytes();
      }
    });
    NameReply reply = brpc.server().client(agent.id()).orElseThrow().stub()
        .withOption(SideChannels.CALL_OPTION, sides)
        .withDeadlineAfter(30, TimeUnit.SECONDS)
        .name(NameRequest.getDefaultInstance());

    assertEquals("agent.log", reply.getName());
    assertArrayEquals(LOG, file.get(30, TimeUnit.SECONDS));
  }
  // [END sidechannel]
}
