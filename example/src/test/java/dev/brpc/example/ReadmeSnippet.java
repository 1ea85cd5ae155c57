package dev.brpc.example;

import dev.brpc.BrpcClient;
import dev.brpc.BrpcServer;
import dev.brpc.example.proto.GreetReply;
import dev.brpc.example.proto.GreetRequest;
import dev.brpc.example.proto.GreeterGrpc;
import dev.brpc.example.proto.NameRequest;
import dev.brpc.example.proto.NamerGrpc;
import io.grpc.stub.StreamObserver;
import java.io.File;
import java.util.List;
import java.util.UUID;

/**
 * README.md's 20-line snippet, here so that it compiles; {@link ExampleDocTest} checks that the
 * README quotes it exactly. (Its server binds every interface, so tests do not run it; the
 * example's own tests run the same calls on loopback.)
 */
final class ReadmeSnippet {
  private ReadmeSnippet() {}

  static GreetReply run(File certPem, File keyPem) throws Exception {
    // [START readme]
    BrpcServer<NamerGrpc.NamerBlockingStub> server =
        BrpcServer.forPort(8443, NamerGrpc::newBlockingStub)
            .useTransportSecurity(certPem, keyPem)
            .addService(self -> new GreeterGrpc.GreeterImplBase() {
              @Override
              public void greet(GreetRequest request, StreamObserver<GreetReply> reply) {
                // The caller, found from its connection, called back over that connection:
                String name = self.clientFromContext().name(NameRequest.getDefaultInstance())
                    .getName();
                reply.onNext(GreetReply.newBuilder().setGreeting("Hello, " + name).build());
                reply.onCompleted();
              }
            })
            .build().start();

    BrpcClient client = BrpcClient.forAddress("localhost", 8443)
        .trustCertificates(certPem)                  // certificate checks are on by default
        .addService(new NamerService(List.of("Ada"), System.out)) // what the server may call
        .build();
    UUID id = client.connect();                      // the server's id for this connection
    GreetReply reply = GreeterGrpc.newBlockingStub(client.channel())
        .greet(GreetRequest.getDefaultInstance());   // meanwhile the server calls Namer
    // [END readme]
    client.close();
    server.shutdown();
    return reply;
  }
}
