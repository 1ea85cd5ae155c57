package dev.brpc.quic.internal;

import static dev.brpc.quic.internal.ContractRecorders.TIMEOUT_MS;

import dev.brpc.quic.internal.ContractRecorders.Violations;
import io.grpc.Attributes;
import io.grpc.ClientStreamTracer;
import io.grpc.Metadata;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Hand-written recording stream tracers for {@link TransportContractTest}: message events as
 * strings in the order they happened, the closing status, header and trailer callbacks. A
 * tracer called out of contract (twice, after close) adds to the test's {@link Violations}.
 */
final class ContractTracers {
  private ContractTracers() {}

  /** Message events in the order they happened, as strings a test can compare. */
  private static final class Events {
    final BlockingQueue<String> inbound = new LinkedBlockingQueue<>();
    final BlockingQueue<String> outbound = new LinkedBlockingQueue<>();
    final AtomicReference<Status> status = new AtomicReference<>();
    final CountDownLatch closed = new CountDownLatch(1);
    final AtomicLong inboundWire = new AtomicLong();
    final AtomicLong inboundUncompressed = new AtomicLong();
    final AtomicLong outboundWire = new AtomicLong();
    final AtomicLong outboundUncompressed = new AtomicLong();

    void closed(Violations violations, String side, Status s) {
      if (!status.compareAndSet(null, s)) {
        violations.add(side + " tracer streamClosed twice: " + status.get() + ", then " + s);
      }
      closed.countDown();
    }
  }

  /**
   * A {@link ClientStreamTracer} that records its events and, like grpc's test tracer, adds a
   * header when the stream is created (so a test can see tracers run before headers go out).
   */
  static final class ClientTracerRecorder extends ClientStreamTracer {
    static final Metadata.Key<String> HEADER_KEY =
        Metadata.Key.of("tracer-key", Metadata.ASCII_STRING_MARSHALLER);
    static final String HEADER_VALUE = "tracer-key-value";

    private final Violations violations;
    private final Events events = new Events();
    final CountDownLatch outboundHeaders = new CountDownLatch(1);
    final AtomicBoolean inboundHeaders = new AtomicBoolean();
    final AtomicReference<Metadata> inboundTrailers = new AtomicReference<>();
    volatile Attributes transportAttrs;

    ClientTracerRecorder(Violations violations) {
      this.violations = violations;
    }

    @Override
    public void streamCreated(Attributes attrs, Metadata headers) {
      transportAttrs = attrs;
      headers.put(HEADER_KEY, HEADER_VALUE);
    }

    @Override
    public void outboundHeaders() {
      if (outboundHeaders.getCount() == 0) {
        violations.add("client tracer outboundHeaders twice");
      }
      outboundHeaders.countDown();
    }

    @Override
    public void inboundHeaders() {
      if (!inboundHeaders.compareAndSet(false, true)) {
        violations.add("client tracer inboundHeaders twice");
      }
    }

    @Override
    public void inboundTrailers(Metadata trailers) {
      if (events.status.get() != null) {
        violations.add("client tracer inboundTrailers after streamClosed");
      }
      if (!inboundTrailers.compareAndSet(null, trailers)) {
        violations.add("client tracer inboundTrailers twice");
      }
    }

    @Override
    public void streamClosed(Status status) {
      events.closed(violations, "client", status);
    }

    @Override
    public void outboundMessage(int seqNo) {
      events.outbound.add("outboundMessage(" + seqNo + ")");
    }

    @Override
    public void inboundMessage(int seqNo) {
      events.inbound.add("inboundMessage(" + seqNo + ")");
    }

    @Override
    public void outboundMessageSent(int seqNo, long wireSize, long uncompressedSize) {
      events.outbound.add("outboundMessageSent(" + seqNo + ", " + wireSize + ", "
          + uncompressedSize + ")");
    }

    @Override
    public void inboundMessageRead(int seqNo, long wireSize, long uncompressedSize) {
      events.inbound.add("inboundMessageRead(" + seqNo + ", " + wireSize + ", "
          + uncompressedSize + ")");
    }

    @Override
    public void outboundWireSize(long bytes) {
      events.outboundWire.addAndGet(bytes);
    }

    @Override
    public void outboundUncompressedSize(long bytes) {
      events.outboundUncompressed.addAndGet(bytes);
    }

    @Override
    public void inboundWireSize(long bytes) {
      events.inboundWire.addAndGet(bytes);
    }

    @Override
    public void inboundUncompressedSize(long bytes) {
      events.inboundUncompressed.addAndGet(bytes);
    }

    String nextOutboundEvent() {
      return events.outbound.poll();
    }

    String nextInboundEvent() {
      return events.inbound.poll();
    }

    Status getStatus() {
      return events.status.get();
    }

    boolean awaitClosed() throws InterruptedException {
      return events.closed.await(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    }

    boolean awaitOutboundHeaders() throws InterruptedException {
      return outboundHeaders.await(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    }

    long inboundWireSize() {
      return events.inboundWire.get();
    }

    long inboundUncompressedSize() {
      return events.inboundUncompressed.get();
    }

    long outboundWireSize() {
      return events.outboundWire.get();
    }

    long outboundUncompressedSize() {
      return events.outboundUncompressed.get();
    }
  }

  /** A {@link ServerStreamTracer} that records its events. Thread-safe. */
  static final class ServerTracerRecorder extends ServerStreamTracer {
    private final Violations violations;
    private final Events events = new Events();

    ServerTracerRecorder(Violations violations) {
      this.violations = violations;
    }

    @Override
    public void streamClosed(Status status) {
      events.closed(violations, "server", status);
    }

    @Override
    public void outboundMessage(int seqNo) {
      events.outbound.add("outboundMessage(" + seqNo + ")");
    }

    @Override
    public void inboundMessage(int seqNo) {
      events.inbound.add("inboundMessage(" + seqNo + ")");
    }

    @Override
    public void outboundMessageSent(int seqNo, long wireSize, long uncompressedSize) {
      events.outbound.add("outboundMessageSent(" + seqNo + ", " + wireSize + ", "
          + uncompressedSize + ")");
    }

    @Override
    public void inboundMessageRead(int seqNo, long wireSize, long uncompressedSize) {
      events.inbound.add("inboundMessageRead(" + seqNo + ", " + wireSize + ", "
          + uncompressedSize + ")");
    }

    @Override
    public void outboundWireSize(long bytes) {
      events.outboundWire.addAndGet(bytes);
    }

    @Override
    public void outboundUncompressedSize(long bytes) {
      events.outboundUncompressed.addAndGet(bytes);
    }

    @Override
    public void inboundWireSize(long bytes) {
      events.inboundWire.addAndGet(bytes);
    }

    @Override
    public void inboundUncompressedSize(long bytes) {
      events.inboundUncompressed.addAndGet(bytes);
    }

    String nextOutboundEvent() {
      return events.outbound.poll();
    }

    String nextInboundEvent() {
      return events.inbound.poll();
    }

    Status getStatus() {
      return events.status.get();
    }

    boolean awaitClosed() throws InterruptedException {
      return events.closed.await(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    }

    long inboundWireSize() {
      return events.inboundWire.get();
    }

    long inboundUncompressedSize() {
      return events.inboundUncompressed.get();
    }

    long outboundWireSize() {
      return events.outboundWire.get();
    }

    long outboundUncompressedSize() {
      return events.outboundUncompressed.get();
    }
  }

  /**
   * Hands out the given tracers to the first server streams, then fresh ones, and records the
   * method name of every call to {@code newServerStreamTracer}.
   */
  static final class ServerTracerFactory extends ServerStreamTracer.Factory {
    private final Violations violations;
    private final Queue<ServerTracerRecorder> first;
    final BlockingQueue<String> methods = new LinkedBlockingQueue<>();

    ServerTracerFactory(Violations violations, ServerTracerRecorder... first) {
      this.violations = violations;
      this.first = new ConcurrentLinkedQueue<>(List.of(first));
    }

    @Override
    public ServerStreamTracer newServerStreamTracer(String fullMethodName, Metadata headers) {
      if (headers == null) {
        violations.add("newServerStreamTracer without headers");
      }
      methods.add(fullMethodName);
      ServerTracerRecorder t = first.poll();
      if (t == null) {
        t = new ServerTracerRecorder(violations);
      }
      return t;
    }
  }
}
