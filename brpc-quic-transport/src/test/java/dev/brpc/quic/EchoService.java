package dev.brpc.quic;

import com.google.protobuf.ByteString;
import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import io.grpc.Context;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * The service the transport tests call, in both directions. Its behaviour is chosen by the
 * request's {@code text}: {@code "fail:CODE:message"} fails with that status, {@code "hang"}
 * never answers and reports the cancellation it sees; {@code "side:..."} uses side channels
 * ({@link SideModes}).
 *
 * <p>Thread-safe.
 */
public final class EchoService extends EchoGrpc.EchoImplBase {
  /** Cancellation reasons seen by hanging calls, in order. */
  final LinkedBlockingQueue<Throwable> cancellations = new LinkedBlockingQueue<>();
  final CountDownLatch hanging = new CountDownLatch(1);
  /** Calls with text "gate" answer once this opens. */
  final CountDownLatch gate = new CountDownLatch(1);
  final CountDownLatch gateEntered = new CountDownLatch(1);
  /** For "flood": messages sent before isReady() first turned false; -1 until then. */
  final java.util.concurrent.atomic.AtomicLong floodSentBeforeBlocked =
      new java.util.concurrent.atomic.AtomicLong(-1);
  final CountDownLatch floodBlocked = new CountDownLatch(1);
  /** For "flood:N": one permit per call when it has sent N messages. */
  final java.util.concurrent.Semaphore floodMarks = new java.util.concurrent.Semaphore(0);
  /** Calls with text "side:..." use side channels. */
  final SideModes side = new SideModes();

  @Override
  public void unary(Msg request, StreamObserver<Msg> response) {
    if (handleSpecial(request.getText(), response)) {
      return;
    }
    response.onNext(request);
    response.onCompleted();
  }

  @Override
  public StreamObserver<Msg> clientStream(StreamObserver<Msg> response) {
    return new StreamObserver<Msg>() {
      int count;
      long bytes;

      @Override
      public void onNext(Msg m) {
        count++;
        bytes += m.getPayload().size();
      }

      @Override
      public void onError(Throwable t) {}

      @Override
      public void onCompleted() {
        response.onNext(Msg.newBuilder().setCount(count).setSize((int) bytes).build());
        response.onCompleted();
      }
    };
  }

  @Override
  public void serverStream(Msg request, StreamObserver<Msg> response) {
    if (handleSpecial(request.getText(), response)) {
      return;
    }
    if (request.getText().startsWith("flood")) {
      flood(request, (ServerCallStreamObserver<Msg>) response);
      return;
    }
    ByteString payload = ByteString.copyFrom(new byte[request.getSize()]);
    for (int i = 0; i < request.getCount(); i++) {
      response.onNext(Msg.newBuilder().setCount(i).setPayload(payload).build());
    }
    response.onCompleted();
  }

  @Override
  public StreamObserver<Msg> bidi(StreamObserver<Msg> response) {
    return new StreamObserver<Msg>() {
      @Override
      public void onNext(Msg m) {
        response.onNext(m);
      }

      @Override
      public void onError(Throwable t) {}

      @Override
      public void onCompleted() {
        response.onCompleted();
      }
    };
  }

  /**
   * Sends count messages of size bytes, only while isReady(); notes when it first blocks and,
   * for "flood:N", when it has sent N.
   */
  private void flood(Msg request, ServerCallStreamObserver<Msg> response) {
    Msg chunk = Msg.newBuilder().setPayload(ByteString.copyFrom(new byte[request.getSize()]))
        .build();
    String text = request.getText();
    int mark = text.startsWith("flood:") ? Integer.parseInt(text.substring(6)) : -1;
    int[] sent = {0};
    boolean[] done = {false};
    response.setOnCancelHandler(() -> { });
    response.setOnReadyHandler(() -> {
      while (response.isReady() && sent[0] < request.getCount()) {
        response.onNext(chunk);
        if (++sent[0] == mark) {
          floodMarks.release();
        }
      }
      if (sent[0] < request.getCount()) {
        if (floodSentBeforeBlocked.compareAndSet(-1, sent[0])) {
          floodBlocked.countDown();
        }
      } else if (!done[0]) {
        done[0] = true;
        response.onCompleted();
      }
    });
  }

  private boolean handleSpecial(String text, StreamObserver<Msg> response) {
    if (text.startsWith("side:")) {
      side.handle(text, response);
      return true;
    }
    if (text.equals("details")) {
      response.onError(io.grpc.protobuf.StatusProto.toStatusRuntimeException(
          com.google.rpc.Status.newBuilder().setCode(Status.Code.FAILED_PRECONDITION.value())
              .setMessage("with details")
              .addDetails(com.google.protobuf.Any.pack(Msg.newBuilder().setText("detail").build()))
              .build()));
      return true;
    }
    if (text.equals("gate")) {
      gateEntered.countDown();
      new Thread(() -> {
        try {
          gate.await();
          response.onNext(Msg.newBuilder().setText("after gate").build());
          response.onCompleted();
        } catch (Exception e) {
          response.onError(e);
        }
      }).start();
      return true;
    }
    if (text.startsWith("fail:")) {
      String[] parts = text.split(":", 3);
      response.onError(Status.fromCodeValue(Integer.parseInt(parts[1]))
          .withDescription(parts.length > 2 ? parts[2] : null).asRuntimeException());
      return true;
    }
    if (text.equals("hang")) {
      Context.current().addListener(c -> cancellations.add(c.cancellationCause()),
          Runnable::run);
      ((ServerCallStreamObserver<Msg>) response).setOnCancelHandler(() -> {});
      hanging.countDown();
      return true;
    }
    return false;
  }
}
