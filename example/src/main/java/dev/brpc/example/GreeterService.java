package dev.brpc.example;

import dev.brpc.BrpcServer;
import dev.brpc.example.proto.GreetReply;
import dev.brpc.example.proto.GreetRequest;
import dev.brpc.example.proto.GreeterGrpc;
import dev.brpc.example.proto.NameRequest;
import dev.brpc.example.proto.NamerGrpc;
import io.grpc.stub.StreamObserver;
import java.io.PrintStream;

/**
 * The server's Greeter. A greeting needs the caller's name, which the request does not carry:
 * the handler asks the calling client for it, over that client's own connection.
 *
 * <p>Thread-safe.
 */
// [START greeter]
final class GreeterService extends GreeterGrpc.GreeterImplBase {
  private final BrpcServer<NamerGrpc.NamerBlockingStub> server;
  private final PrintStream out;

  GreeterService(BrpcServer<NamerGrpc.NamerBlockingStub> server, PrintStream out) {
    this.server = server;
    this.out = out;
  }

  @Override
  public void greet(GreetRequest request, StreamObserver<GreetReply> reply) {
    out.println("[server] Greet from client " + server.callerFromContext().id()
        + ": asking it for its name");
    // The stub for the client that made this call: a callback over its own connection.
    String name = server.clientFromContext().name(NameRequest.getDefaultInstance()).getName();
    out.println("[server] the client says its name is " + name);
    reply.onNext(GreetReply.newBuilder().setGreeting("Hello, " + name + "!").build());
    reply.onCompleted();
  }

  @Override
  public void greetAll(GreetRequest request, StreamObserver<GreetReply> reply) {
    // A streaming callback: the client streams every name it goes by.
    server.clientFromContext().names(NameRequest.getDefaultInstance()).forEachRemaining(n -> {
      out.println("[server] streamed from the client: " + n.getName());
      reply.onNext(GreetReply.newBuilder().setGreeting("Hello, " + n.getName() + "!").build());
    });
    reply.onCompleted();
  }
}
// [END greeter]
