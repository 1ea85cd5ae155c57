package dev.brpc.bench;

import com.google.protobuf.ByteString;
import dev.brpc.bench.proto.BenchGrpc;
import dev.brpc.bench.proto.Payload;
import dev.brpc.bench.proto.StreamRequest;
import dev.brpc.quic.SideChannel;
import dev.brpc.quic.SideChannels;
import java.util.Iterator;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * A {@link Stack.Caller} over any grpc channel (brpc forward or callback, Netty), with blocking
 * stubs: the calling thread waits for each response, as in the raw kwik caller.
 *
 * <p>Thread-safe.
 */
final class GrpcCaller implements Stack.Caller {
  static final Payload REQUEST = Payload.newBuilder()
      .setData(ByteString.copyFrom(new byte[16])).build();

  /** Read the side channels of {@link #sideChannel} while the calling thread waits. */
  private static final ExecutorService READERS = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "bench-side-channel-reader");
    t.setDaemon(true);
    return t;
  });
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
  public long sideChannel(int count, int size) throws Exception {
    SideChannels sides = SideChannels.create();
    Future<Long> received = READERS.submit(() -> {
      byte[] buffer = new byte[64 * 1024];
      long bytes = 0;
      try (SideChannel c = sides.accept()) {
        for (int n; (n = c.input().read(buffer)) >= 0; ) {
          bytes += n;
        }
      }
      return bytes;
    });
    stub.withOption(SideChannels.CALL_OPTION, sides).sideChannel(
        StreamRequest.newBuilder().setCount(count).setSize(size).build());
    return received.get(60, TimeUnit.SECONDS);
  }

  @Override
  public void close() {
    close.run();
  }
}
