package dev.brpc.quic.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import io.grpc.Attributes;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.internal.ClientStreamListener;
import io.grpc.internal.DisconnectError;
import io.grpc.internal.ManagedClientTransport;
import io.grpc.internal.ServerListener;
import io.grpc.internal.ServerStream;
import io.grpc.internal.ServerStreamListener;
import io.grpc.internal.ServerTransport;
import io.grpc.internal.ServerTransportListener;
import io.grpc.internal.StreamListener.MessageProducer;
import java.io.InputStream;
import java.util.Queue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.UnaryOperator;

/**
 * Hand-written recording listeners for {@link TransportContractTest} (tracers are in
 * {@link ContractTracers}): each puts what the transport tells it into blocking queues,
 * latches or futures that a test waits on with a bound, and checks the listener contract
 * itself (called once, in order, nothing after close). A broken contract is added to a
 * {@link Violations} that the test asserts empty at the end, because an assertion thrown on a
 * transport thread would be lost.
 */
final class ContractRecorders {
  /** How long a test waits for something that must happen. */
  static final long TIMEOUT_MS = 10_000;

  private ContractRecorders() {}

  /** Contract violations seen on transport threads. Thread-safe. */
  static final class Violations {
    private final Queue<AssertionError> errors = new ConcurrentLinkedQueue<>();

    void add(String message) {
      errors.add(new AssertionError(message));
    }

    void assertNone() {
      AssertionError first = errors.peek();
      if (first != null) {
        AssertionError e = new AssertionError(errors.size() + " listener contract violation(s);"
            + " first: " + first.getMessage(), first);
        throw e;
      }
    }
  }

  static <T> T poll(BlockingQueue<T> queue, String what) throws InterruptedException {
    T t = queue.poll(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    if (t == null) {
      fail("timed out waiting for " + what);
    }
    return t;
  }

  static void await(CountDownLatch latch, String what) throws InterruptedException {
    if (!latch.await(TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
      fail("timed out waiting for " + what);
    }
  }

  static <T> T await(CompletableFuture<T> future, String what) throws Exception {
    try {
      return future.get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.TimeoutException e) {
      throw new AssertionError("timed out waiting for " + what, e);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Transports.

  /** A {@link ManagedClientTransport.Listener}. Thread-safe. */
  static final class ClientTransportRecorder implements ManagedClientTransport.Listener {
    private final Violations violations;
    private final String name;
    final CountDownLatch filtered = new CountDownLatch(1);
    final CountDownLatch ready = new CountDownLatch(1);
    final CompletableFuture<Status> shutdown = new CompletableFuture<>();
    final CountDownLatch terminated = new CountDownLatch(1);
    /** Every transportInUse call, in order. */
    final BlockingQueue<Boolean> inUse = new LinkedBlockingQueue<>();
    final AtomicInteger inUseTrue = new AtomicInteger();
    final AtomicInteger inUseFalse = new AtomicInteger();
    private final AtomicBoolean lastInUse = new AtomicBoolean();

    ClientTransportRecorder(Violations violations, String name) {
      this.violations = violations;
      this.name = name;
    }

    @Override
    public Attributes filterTransport(Attributes attributes) {
      if (ready.getCount() == 0) {
        violations.add(name + ": filterTransport after transportReady");
      }
      filtered.countDown();
      return attributes;
    }

    @Override
    public void transportReady() {
      if (filtered.getCount() != 0) {
        violations.add(name + ": transportReady without filterTransport first");
      }
      if (ready.getCount() == 0) {
        violations.add(name + ": transportReady called twice");
      }
      if (terminated.getCount() == 0) {
        violations.add(name + ": transportReady after transportTerminated");
      }
      ready.countDown();
    }

    @Override
    public void transportShutdown(Status s, DisconnectError e) {
      if (s == null || e == null) {
        violations.add(name + ": transportShutdown(" + s + ", " + e + ")");
      }
      if (!shutdown.complete(s)) {
        violations.add(name + ": transportShutdown called twice (" + s + ")");
      }
    }

    @Override
    public void transportTerminated() {
      if (!shutdown.isDone()) {
        violations.add(name + ": transportTerminated before transportShutdown");
      }
      if (terminated.getCount() == 0) {
        violations.add(name + ": transportTerminated called twice");
      }
      terminated.countDown();
    }

    @Override
    public void transportInUse(boolean value) {
      if (lastInUse.getAndSet(value) == value) {
        violations.add(name + ": transportInUse(" + value + ") twice in a row");
      }
      (value ? inUseTrue : inUseFalse).incrementAndGet();
      inUse.add(value);
    }

    void awaitReady() throws InterruptedException {
      await(filtered, name + " filterTransport");
      await(ready, name + " transportReady");
    }

    Status awaitShutdown() throws Exception {
      return await(shutdown, name + " transportShutdown");
    }

    void awaitTerminated() throws InterruptedException {
      await(terminated, name + " transportTerminated");
    }

    boolean isTerminated() {
      return terminated.getCount() == 0;
    }

    /** Waits for the next transportInUse call and checks its value. */
    void awaitInUse(boolean expected) throws InterruptedException {
      assertEquals(expected, poll(inUse, name + " transportInUse(" + expected + ")"),
          name + " transportInUse");
    }
  }

  /** A {@link ServerListener} that records every server transport. Thread-safe. */
  static final class ServerRecorder implements ServerListener {
    private final Violations violations;
    private final UnaryOperator<Attributes> readyFilter;
    final BlockingQueue<ServerTransportRecorder> transports = new LinkedBlockingQueue<>();
    final Queue<ServerTransportRecorder> all = new ConcurrentLinkedQueue<>();
    final CountDownLatch shutdown = new CountDownLatch(1);

    ServerRecorder(Violations violations) {
      this(violations, a -> a);
    }

    /** @param readyFilter what {@code transportReady} returns for the attributes it is given */
    ServerRecorder(Violations violations, UnaryOperator<Attributes> readyFilter) {
      this.violations = violations;
      this.readyFilter = readyFilter;
    }

    @Override
    public ServerTransportListener transportCreated(ServerTransport transport) {
      ServerTransportRecorder t = new ServerTransportRecorder(violations, transport, readyFilter);
      all.add(t);
      transports.add(t);
      return t;
    }

    @Override
    public void serverShutdown() {
      if (shutdown.getCount() == 0) {
        violations.add("serverShutdown called twice");
      }
      shutdown.countDown();
    }

    ServerTransportRecorder takeTransport() throws InterruptedException {
      return poll(transports, "a server transport");
    }

    boolean awaitShutdown() throws InterruptedException {
      return shutdown.await(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    }
  }

  /** One server stream as {@code streamCreated} announced it. */
  static final class StreamCreation {
    final ServerStream stream;
    final String method;
    final Metadata headers;
    final ServerStreamRecorder listener;

    StreamCreation(ServerStream stream, String method, Metadata headers,
        ServerStreamRecorder listener) {
      this.stream = stream;
      this.method = method;
      this.headers = headers;
      this.listener = listener;
    }
  }

  /** A {@link ServerTransportListener}. Thread-safe. */
  static final class ServerTransportRecorder implements ServerTransportListener {
    private final Violations violations;
    private final UnaryOperator<Attributes> readyFilter;
    final ServerTransport transport;
    final BlockingQueue<StreamCreation> streams = new LinkedBlockingQueue<>();
    final CountDownLatch terminated = new CountDownLatch(1);

    ServerTransportRecorder(Violations violations, ServerTransport transport,
        UnaryOperator<Attributes> readyFilter) {
      this.violations = violations;
      this.transport = transport;
      this.readyFilter = readyFilter;
    }

    @Override
    public void streamCreated(ServerStream stream, String method, Metadata headers) {
      if (terminated.getCount() == 0) {
        violations.add(transport + ": streamCreated after transportTerminated");
      }
      ServerStreamRecorder listener = new ServerStreamRecorder(violations);
      stream.setListener(listener);
      streams.add(new StreamCreation(stream, method, headers, listener));
    }

    @Override
    public Attributes transportReady(Attributes attributes) {
      if (terminated.getCount() == 0) {
        violations.add(transport + ": transportReady after transportTerminated");
      }
      return readyFilter.apply(attributes);
    }

    @Override
    public void transportTerminated() {
      if (terminated.getCount() == 0) {
        violations.add(transport + ": transportTerminated called twice");
      }
      terminated.countDown();
    }

    StreamCreation takeStream() throws InterruptedException {
      return poll(streams, "a server stream");
    }

    boolean awaitTermination() throws InterruptedException {
      return terminated.await(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    }

    boolean isTerminated() {
      return terminated.getCount() == 0;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Streams.

  /** A {@link ClientStreamListener}. Thread-safe. */
  static class ClientStreamRecorder implements ClientStreamListener {
    private final Violations violations;
    final BlockingQueue<InputStream> messages = new LinkedBlockingQueue<>();
    final BlockingQueue<Object> ready = new LinkedBlockingQueue<>();
    final CompletableFuture<Metadata> headers = new CompletableFuture<>();
    final CompletableFuture<Status> status = new CompletableFuture<>();
    final CompletableFuture<Metadata> trailers = new CompletableFuture<>();
    final AtomicReference<RpcProgress> progress = new AtomicReference<>();

    ClientStreamRecorder(Violations violations) {
      this.violations = violations;
    }

    @Override
    public void messagesAvailable(MessageProducer producer) {
      if (status.isDone()) {
        violations.add("client messagesAvailable after closed");
      }
      InputStream m;
      while ((m = producer.next()) != null) {
        messages.add(m);
      }
    }

    @Override
    public void onReady() {
      if (status.isDone()) {
        violations.add("client onReady after closed");
      }
      ready.add(Boolean.TRUE);
    }

    @Override
    public void headersRead(Metadata metadata) {
      if (status.isDone()) {
        violations.add("client headersRead after closed");
      }
      if (!headers.complete(metadata)) {
        violations.add("client headersRead twice");
      }
    }

    @Override
    public void closed(Status s, RpcProgress rpcProgress, Metadata metadata) {
      if (s == null || metadata == null) {
        violations.add("client closed(" + s + ", " + metadata + ")");
      }
      progress.set(rpcProgress);
      trailers.complete(metadata);
      if (!status.complete(s)) {
        violations.add("client closed twice: " + s);
      }
    }

    Status awaitClose() throws Exception {
      return await(status, "the client stream to close");
    }

    Metadata awaitTrailers() throws Exception {
      return await(trailers, "the client stream's trailers");
    }

    Metadata awaitHeaders() throws Exception {
      return await(headers, "the client stream's headers");
    }

    boolean isClosed() {
      return status.isDone();
    }

    boolean hasHeaders() {
      return headers.isDone();
    }

    /** Waits for one onReady, then forgets any others already queued. */
    boolean awaitOnReadyAndDrain() throws InterruptedException {
      if (ready.poll(TIMEOUT_MS, TimeUnit.MILLISECONDS) == null) {
        return false;
      }
      ready.clear();
      return true;
    }
  }

  /** A {@link ServerStreamListener}. Thread-safe. */
  static final class ServerStreamRecorder implements ServerStreamListener {
    private final Violations violations;
    final BlockingQueue<InputStream> messages = new LinkedBlockingQueue<>();
    final BlockingQueue<Object> ready = new LinkedBlockingQueue<>();
    final CountDownLatch halfClosed = new CountDownLatch(1);
    final CompletableFuture<Status> status = new CompletableFuture<>();

    ServerStreamRecorder(Violations violations) {
      this.violations = violations;
    }

    @Override
    public void messagesAvailable(MessageProducer producer) {
      if (status.isDone()) {
        violations.add("server messagesAvailable after closed");
      }
      InputStream m;
      while ((m = producer.next()) != null) {
        messages.add(m);
      }
    }

    @Override
    public void onReady() {
      if (status.isDone()) {
        violations.add("server onReady after closed");
      }
      ready.add(Boolean.TRUE);
    }

    @Override
    public void halfClosed() {
      if (status.isDone()) {
        violations.add("server halfClosed after closed");
      }
      if (halfClosed.getCount() == 0) {
        violations.add("server halfClosed twice");
      }
      halfClosed.countDown();
    }

    @Override
    public void closed(Status s) {
      if (s == null) {
        violations.add("server closed(null)");
      }
      if (!status.complete(s)) {
        violations.add("server closed twice: " + s);
      }
    }

    Status awaitClose() throws Exception {
      return await(status, "the server stream to close");
    }

    boolean awaitHalfClosed() throws InterruptedException {
      return halfClosed.await(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    }

    boolean isHalfClosed() {
      return halfClosed.getCount() == 0;
    }

    boolean awaitOnReadyAndDrain() throws InterruptedException {
      if (ready.poll(TIMEOUT_MS, TimeUnit.MILLISECONDS) == null) {
        return false;
      }
      ready.clear();
      return true;
    }
  }
}
