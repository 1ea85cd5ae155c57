package dev.brpc.bench;

import com.google.protobuf.ByteString;
import dev.brpc.bench.proto.BenchGrpc;
import dev.brpc.bench.proto.Payload;
import dev.brpc.bench.proto.StreamRequest;
import java.util.Iterator;

/**
 * A {@link Stack.Caller} over any grpc channel (brpc forward or callback, Netty), with blocking
 * stubs: the calling thread waits for each response, as in the raw kwik caller.
 *
 * <p>Thread-safe.
 */
final class GrpcCaller implements Stack.Caller {
  static final Payload REQUEST = Payload.newBuilder()
      .setData(ByteString.copyFrom(new byte[16])).build();

  private final BenchGrpc.BenchBlockingStub stub;
  private final Runnable close;

  GrpcCaller(BenchGrpc.BenchBlockingStub stub, Runnable close) {
    this.stub = stub;
    this.close = close;
  }

  @Override
  public void unary() {
    Payload reply = stub.unary(REQUEST);
    if (reply.getData().size() != REQUEST.getData().size()) {
      throw new IllegalStateException("echo of " + reply.getData().size() + " bytes");
    }
  }

  @Override
  public long stream(int count, int size) {
    Iterator<Payload> replies = stub.stream(
        StreamRequest.newBuilder().setCount(count).setSize(size).build());
    long bytes = 0;
    while (replies.hasNext()) {
      bytes += replies.next().getData().size();
    }
    return bytes;
  }

  @Override
  public void close() {
    close.run();
  }
}
