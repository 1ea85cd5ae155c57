package dev.brpc.quic;

import dev.brpc.quic.test.Msg;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * What {@link EchoService} does with side channels, chosen by the request's text {@code
 * "side:MODE[:ARG]"}; runs on the server's executor, where a handler may block.
 *
 * <ul>
 *   <li>{@code download:N}: opens a side channel, writes N bytes of test data ({@link #fill}),
 *       closes it, answers with their SHA-256 in hex; a failed write goes to {@link #failures};
 *   <li>{@code upload}: accepts one, reads it to its end, answers {@code "N:sha256"};
 *   <li>{@code echo}: accepts one, writes back what it reads until its end, answers;
 *   <li>{@code open}: tries to open one, answers {@code "opened"} or {@code "failed: why"};
 *   <li>{@code hold}: accepts one and reads it, never answers; what failed the read goes to
 *       {@link #failures};
 *   <li>{@code stall}: accepts one and never reads it, never answers;
 *   <li>{@code fail}: accepts one, reads a byte, fails the call with INTERNAL.
 * </ul>
 *
 * <p>Thread-safe.
 */
final class SideModes {
  final LinkedBlockingQueue<String> failures = new LinkedBlockingQueue<>();
  final CountDownLatch held = new CountDownLatch(1);

  void handle(String text, StreamObserver<Msg> response) {
    String[] parts = text.split(":", 3);
    try {
      switch (parts[1]) {
        case "download": {
          long n = Long.parseLong(parts[2]);
          try (SideChannel c = SideChannels.current().open()) {
            writeData(c.output(), n);
          } catch (IOException e) {
            failures.add(e.getMessage());
            throw e;
          }
          reply(response, sha256Hex(n));
          break;
        }
        case "upload": {
          try (SideChannel c = SideChannels.current().accept(20, TimeUnit.SECONDS)) {
            reply(response, digest(c.input()));
          }
          break;
        }
        case "echo": {
          try (SideChannel c = SideChannels.current().accept(20, TimeUnit.SECONDS)) {
            long n = c.input().transferTo(c.output());
            c.output().close();
            reply(response, "echoed " + n);
          }
          break;
        }
        case "open": {
          String result;
          try (SideChannel c = SideChannels.current().open()) {
            result = "opened";
          } catch (IOException e) {
            result = "failed: " + e.getMessage();
          }
          reply(response, result);
          break;
        }
        case "hold": {
          ((ServerCallStreamObserver<Msg>) response).setOnCancelHandler(() -> {});
          SideChannel c = SideChannels.current().accept(20, TimeUnit.SECONDS);
          held.countDown();
          try {
            c.input().transferTo(OutputStream.nullOutputStream());
            failures.add("ended without an error");
          } catch (IOException e) {
            failures.add(e.getMessage());
          }
          break;
        }
        case "stall": {
          ((ServerCallStreamObserver<Msg>) response).setOnCancelHandler(() -> {});
          SideChannels.current().accept(20, TimeUnit.SECONDS);
          held.countDown(); // and never reads
          break;
        }
        case "fail": {
          SideChannel c = SideChannels.current().accept(20, TimeUnit.SECONDS);
          c.input().read();
          response.onError(Status.INTERNAL.withDescription("failed on purpose")
              .asRuntimeException());
          break;
        }
        default:
          response.onError(Status.INVALID_ARGUMENT.withDescription(text).asRuntimeException());
      }
    } catch (IOException e) {
      response.onError(Status.UNKNOWN.withDescription(e.toString()).asRuntimeException());
    }
  }

  private static void reply(StreamObserver<Msg> response, String text) {
    response.onNext(Msg.newBuilder().setText(text).build());
    response.onCompleted();
  }

  /** Byte {@code i} of the test data: deterministic, not periodic within a chunk. */
  static void fill(byte[] chunk, long offset) {
    for (int i = 0; i < chunk.length; i++) {
      long x = (offset + i) * 0x9E3779B97F4A7C15L;
      chunk[i] = (byte) (x >>> 56 ^ x >>> 29);
    }
  }

  static void writeData(OutputStream out, long n) throws IOException {
    byte[] chunk = new byte[64 * 1024];
    for (long off = 0; off < n; off += chunk.length) {
      int len = (int) Math.min(chunk.length, n - off);
      fill(chunk, off);
      out.write(chunk, 0, len);
    }
  }

  static String sha256Hex(long n) {
    MessageDigest md = sha256();
    byte[] chunk = new byte[64 * 1024];
    for (long off = 0; off < n; off += chunk.length) {
      int len = (int) Math.min(chunk.length, n - off);
      fill(chunk, off);
      md.update(chunk, 0, len);
    }
    return HexFormat.of().formatHex(md.digest());
  }

  /** {@code "N:sha256"} of what {@code in} holds up to its end. */
  static String digest(InputStream in) throws IOException {
    MessageDigest md = sha256();
    byte[] buf = new byte[64 * 1024];
    long total = 0;
    int n;
    while ((n = in.read(buf)) >= 0) {
      md.update(buf, 0, n);
      total += n;
    }
    return total + ":" + HexFormat.of().formatHex(md.digest());
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}
