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
 * never answers and reports the cancellation it sees.
 *
 * <p>Thread-safe.
 */
final class EchoService extends EchoGrpc.EchoImplBase {
  /** Cancellation reasons seen by hanging calls, in order. */
  final LinkedBlockingQueue<Throwable> cancellations = new LinkedBlockingQueue<>();
  final CountDownLatch hanging = new CountDownLatch(1);
  volatile Metadata lastHeaders;

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

  private boolean handleSpecial(String text, StreamObserver<Msg> response) {
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
