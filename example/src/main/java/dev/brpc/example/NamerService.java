package dev.brpc.example;

import dev.brpc.example.proto.NameReply;
import dev.brpc.example.proto.NameRequest;
import dev.brpc.example.proto.NamerGrpc;
import io.grpc.stub.StreamObserver;
import java.io.PrintStream;
import java.util.List;

/**
 * The client's Namer: what the server calls back. Its first name answers {@code Name}; all of
 * them stream from {@code Names}.
 *
 * <p>Thread-safe.
 */
// [START namer]
final class NamerService extends NamerGrpc.NamerImplBase {
  private final List<String> names;
  private final PrintStream out;

  NamerService(List<String> names, PrintStream out) {
    this.names = List.copyOf(names);
    this.out = out;
  }

  @Override
  public void name(NameRequest request, StreamObserver<NameReply> reply) {
    out.println("[client] the server asks for our name: answering " + names.get(0));
    reply.onNext(NameReply.newBuilder().setName(names.get(0)).build());
    reply.onCompleted();
  }

  @Override
  public void names(NameRequest request, StreamObserver<NameReply> reply) {
    out.println("[client] the server asks for all our names: streaming " + names.size());
    for (String name : names) {
      reply.onNext(NameReply.newBuilder().setName(name).build());
    }
    reply.onCompleted();
  }
}
// [END namer]
