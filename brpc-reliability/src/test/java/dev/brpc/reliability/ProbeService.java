package dev.brpc.reliability;

import com.google.protobuf.ByteString;
import dev.brpc.reliability.proto.Chunk;
import dev.brpc.reliability.proto.Digest;
import dev.brpc.reliability.proto.Msg;
import dev.brpc.reliability.proto.ProbeGrpc;
import dev.brpc.reliability.proto.Size;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The Probe service, served by the server and by every client. It counts how often each call
 * id ran ({@link #runs}) and how many messages arrived that do not match their digest
 * ({@link #corrupted}); {@code Hang} calls release {@link #hanging} and report their
 * cancellation to {@link #cancelled}.
 *
 * <p>Thread-safe.
 */
final class ProbeService extends ProbeGrpc.ProbeImplBase {
  final Map<String, AtomicInteger> runs = new ConcurrentHashMap<>();
  final AtomicInteger corrupted = new AtomicInteger();
  final Semaphore hanging = new Semaphore(0);
  final LinkedBlockingQueue<Throwable> cancelled = new LinkedBlockingQueue<>();

  static Msg msg(String id, byte[] payload) {
    return Msg.newBuilder().setId(id).setPayload(ByteString.copyFrom(payload))
        .setDigest(ByteString.copyFrom(sha256().digest(payload))).build();
  }

  static boolean intact(Msg m) {
    return MessageDigest.isEqual(sha256().digest(m.getPayload().toByteArray()),
        m.getDigest().toByteArray());
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  /** {@code size} bytes from {@code random}. */
  static byte[] chunk(Random random, int size) {
    byte[] b = new byte[size];
    random.nextBytes(b);
    return b;
  }

  int runsOf(String id) {
    AtomicInteger n = runs.get(id);
    return n == null ? 0 : n.get();
  }

  @Override
  public void echo(Msg request, StreamObserver<Msg> reply) {
    runs.computeIfAbsent(request.getId(), k -> new AtomicInteger()).incrementAndGet();
    if (!intact(request)) {
      corrupted.incrementAndGet();
      reply.onError(Status.DATA_LOSS.withDescription("digest mismatch").asRuntimeException());
      return;
    }
    reply.onNext(request);
    reply.onCompleted();
  }

  @Override
  public StreamObserver<Chunk> upload(StreamObserver<Digest> reply) {
    MessageDigest sha = sha256();
    return new StreamObserver<>() {
      long bytes;

      @Override
      public void onNext(Chunk chunk) {
        sha.update(chunk.getData().asReadOnlyByteBuffer());
        bytes += chunk.getData().size();
      }

      @Override
      public void onError(Throwable t) {}

      @Override
      public void onCompleted() {
        reply.onNext(Digest.newBuilder().setSha256(ByteString.copyFrom(sha.digest()))
            .setBytes(bytes).build());
        reply.onCompleted();
      }
    };
  }

  /** Streams with flow control: writes only while the transport says it is ready. */
  @Override
  public void download(Size request, StreamObserver<Chunk> reply) {
    ServerCallStreamObserver<Chunk> out = (ServerCallStreamObserver<Chunk>) reply;
    Random random = new Random(request.getSeed());
    long[] left = {request.getBytes()};
    boolean[] done = {false};
    out.setOnReadyHandler(() -> {
      while (out.isReady() && left[0] > 0 && !out.isCancelled()) {
        int n = (int) Math.min(request.getChunk(), left[0]);
        out.onNext(Chunk.newBuilder().setData(ByteString.copyFrom(chunk(random, n))).build());
        left[0] -= n;
      }
      if (left[0] == 0 && !done[0]) {
        done[0] = true;
        out.onCompleted();
      }
    });
  }

  @Override
  public void hang(Msg request, StreamObserver<Msg> reply) {
    Context.current().addListener(c -> cancelled.add(c.cancellationCause()), Runnable::run);
    hanging.release();
  }
}
