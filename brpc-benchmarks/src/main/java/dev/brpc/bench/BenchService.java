package dev.brpc.bench;

import com.google.protobuf.ByteString;
import dev.brpc.bench.proto.BenchGrpc;
import dev.brpc.bench.proto.Payload;
import dev.brpc.bench.proto.StreamRequest;
import java.io.IOException;
import dev.brpc.quic.SideChannel;
import dev.brpc.quic.SideChannels;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;

/**
 * The benchmark service, the same for every gRPC server in the benchmark and for the brpc
 * client's callbacks: {@code Unary} echoes, {@code Stream} sends the asked-for messages while
 * the transport is ready (flow control, as a well-behaved streaming server must), {@code
 * SideChannel} sends as many bytes on a side channel (brpc only; blocks the handler's thread
 * while the client does not read, as a side channel's writer does).
 *
 * <p>Thread-safe: grpc serializes each call's callbacks; calls share nothing mutable.
 */
final class BenchService extends BenchGrpc.BenchImplBase {
  private volatile Payload lastMessage = Payload.getDefaultInstance();

  @Override
  public void unary(Payload request, StreamObserver<Payload> reply) {
    reply.onNext(request);
    reply.onCompleted();
  }

  @Override
  public void stream(StreamRequest request, StreamObserver<Payload> reply) {
    ServerCallStreamObserver<Payload> out = (ServerCallStreamObserver<Payload>) reply;
    Payload message = message(request.getSize());
    int[] left = {request.getCount()};
    boolean[] done = {false};
    out.setOnReadyHandler(() -> {
      while (left[0] > 0 && out.isReady() && !out.isCancelled()) {
        out.onNext(message);
        left[0]--;
      }
      if (left[0] == 0 && !done[0]) {
        done[0] = true;
        out.onCompleted();
      }
    });
  }

  @Override
  public void sideChannel(StreamRequest request, StreamObserver<Payload> reply) {
    byte[] chunk = new byte[request.getSize()];
    try (SideChannel c = SideChannels.current().open()) {
      for (int i = 0; i < request.getCount(); i++) {
        c.output().write(chunk);
      }
    } catch (IOException e) {
      reply.onError(Status.UNAVAILABLE.withDescription("side channel failed").withCause(e)
          .asException());
      return;
    }
    reply.onNext(Payload.getDefaultInstance());
    reply.onCompleted();
  }

  /** One immutable message per size, reused: the benchmark measures transports, not protobuf. */
  private Payload message(int size) {
    Payload m = lastMessage;
    if (m.getData().size() != size) {
      m = Payload.newBuilder().setData(ByteString.copyFrom(new byte[size])).build();
      lastMessage = m;
    }
    return m;
  }
}
