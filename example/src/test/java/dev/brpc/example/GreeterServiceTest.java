package dev.brpc.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.brpc.BrpcClient;
import dev.brpc.example.proto.GreetReply;
import dev.brpc.example.proto.GreetRequest;
import dev.brpc.example.proto.GreeterGrpc;
import dev.brpc.example.proto.NamerGrpc;
import dev.brpc.testing.BrpcServerExtension;
import java.io.OutputStream;
import java.io.PrintStream;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The server's {@link GreeterService} tested as a user tests a handler that calls its client
 * back, with brpc-testing's {@link BrpcServerExtension} (EXAMPLE.md quotes it).
 */
class GreeterServiceTest {
  private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

  // [START test]
  @RegisterExtension
  final BrpcServerExtension<NamerGrpc.NamerBlockingStub> brpc =
      BrpcServerExtension.create(NamerGrpc::newBlockingStub)
          .configureServer(server -> server.addService(self -> new GreeterService(self, QUIET)));

  @Test
  void greet_callsTheCallerBackForItsName() {
    // A client connected to the test's server, serving Namer for the server to call.
    BrpcClient client = brpc.connectClient(new NamerService(List.of("Ada"), QUIET));

    GreetReply reply = GreeterGrpc.newBlockingStub(client.channel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .greet(GreetRequest.getDefaultInstance());

    assertEquals("Hello, Ada!", reply.getGreeting());
  } // after the test: the client and the server are shut down, and must terminate
  // [END test]

  @Test
  void greetAll_streamsAGreetingPerNameTheCallerStreams() {
    BrpcClient client = brpc.connectClient(new NamerService(List.of("Ada", "Grace"), QUIET));

    Iterator<GreetReply> replies = GreeterGrpc.newBlockingStub(client.channel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .greetAll(GreetRequest.getDefaultInstance());

    assertEquals("Hello, Ada!", replies.next().getGreeting());
    assertEquals("Hello, Grace!", replies.next().getGreeting());
    assertFalse(replies.hasNext());
  }
}
