package dev.brpc.quic.internal;

import com.google.common.util.concurrent.MoreExecutors;
import dev.brpc.quic.engine.EngineStream;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Attributes;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.internal.AbstractServerStream;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.ReadableBuffers;
import io.grpc.internal.SerializingExecutor;
import io.grpc.internal.StatsTraceContext;
import io.grpc.internal.TransportTracer;
import io.grpc.internal.WritableBuffer;
import java.io.IOException;

/**
 * One call as its callee sees it: a QUIC bidirectional stream the peer opened, after its
 * HEADERS were read. Response HEADERS, DATA, TRAILERS and FIN go out through a
 * {@link StreamWriter}; request DATA and FIN come in through a {@link StreamReader}.
 *
 * <p>Thread-safe. gRPC's transport thread is a {@link SerializingExecutor} over the calling
 * thread, as in grpc-java's servlet transport: request frames are delivered on the thread
 * that parsed them, usually the engine's thread ({@link StreamReader}), and gRPC hands the
 * application's work to the server's executor.
 */
final class QuicServerStream extends AbstractServerStream implements Connection.Stream {
  private final QuicServerTransport transport;
  private final Connection connection;
  private final Attributes attributes;
  private final String authority;
  private final ServerState state;
  private final Sink sink = new Sink();
  private final StreamWriter writer;
  private final StreamReader reader;
  private final StreamEvents events;
  private final EngineStream quicStream;
  private final int streamId;
  private final SideChannelSlot sideChannels;

  private final Object lock = new Object();
  @GuardedBy("lock") private boolean trailersQueued;
  @GuardedBy("lock") private boolean halfCloseSeen;
  @GuardedBy("lock") private boolean inboundDone;
  @GuardedBy("lock") private boolean outboundDone;
  @GuardedBy("lock") private boolean released;
  @GuardedBy("lock") private boolean outcomeReported;

  QuicServerStream(QuicServerTransport transport, Connection connection, EngineStream stream,
      StreamReader reader, StreamEvents events, StatsTraceContext statsTraceCtx,
      TransportTracer tracer,
      Attributes attributes, String authority, int maxInboundMessageSize,
      SideChannelSlot sideChannels) {
    super(DataFrameBuffer.ALLOCATOR, statsTraceCtx);
    this.transport = transport;
    this.connection = connection;
    this.attributes = attributes;
    this.authority = authority;
    this.streamId = (int) stream.id();
    this.state = new ServerState(maxInboundMessageSize, statsTraceCtx, tracer);
    this.writer = new StreamWriter(new WriterCallback());
    this.reader = reader;
    this.events = events;
    this.quicStream = stream;
    this.sideChannels = sideChannels;
  }

  /**
   * Starts the call once gRPC knows it (after {@code streamCreated}); returns the handler for
   * the rest of the request, which the reader delivers to after this returns.
   */
  StreamReader.Handler started() {
    state.runOnTransportThread(state::onStreamAllocated);
    // The writer starts only now, after onStreamAllocated is queued: the application may write
    // as soon as streamCreated has returned, and the writer's progress reports (onSentBytes)
    // fail on a stream that is not allocated yet. Frames written before wait in its queue.
    events.writer(writer);
    writer.attach(quicStream);
    return new ReaderHandler();
  }

  @Override
  protected ServerState transportState() {
    return state;
  }

  @Override
  protected Sink abstractServerStreamSink() {
    return sink;
  }

  @Override
  public int streamId() {
    return streamId;
  }

  @Override
  public Attributes getAttributes() {
    return attributes;
  }

  @Override
  public String getAuthority() {
    return authority;
  }

  /** The connection is gone: no reset is sent (see {@link QuicClientStream#connectionClosed}). */
  @Override
  public void connectionClosed(Status status) {
    abortCall(status, -1);
  }

  /**
   * The caller cancelled the call after finishing its request (a CANCEL control frame,
   * PROTOCOL.md section 4): end it as a reset would have.
   */
  void cancelledByPeer(long code) {
    abortCall(Status.CANCELLED.withDescription("call cancelled by the caller"), code);
  }

  /** Ends the call without trailers: reset both halves and tell the application. */
  private void abortCall(Status status, long code) {
    synchronized (lock) {
      inboundDone = true;
      outboundDone = true;
    }
    // Reported before the resets go out: the peer's answer to them (its own reset, seen by
    // the reader or writer) must not become the outcome of, say, a cancel by this side.
    reportOutcome(status);
    writer.reset(code);
    reader.abort(code);
    release();
  }

  /**
   * Ends the call with {@code status} sent to the peer in TRAILERS (trailers-only if no
   * HEADERS went out), e.g. when a request message is over the limit.
   */
  private void closeWithStatus(Status status) {
    boolean send;
    synchronized (lock) {
      send = !trailersQueued;
      trailersQueued = true;
    }
    // Before the trailers go out: once they are written, the writer reports completion.
    reportOutcome(status);
    if (send) {
      writer.finish(StreamRejector.trailersFrame(status, false));
    }
    reader.abort(Wire.errorCode(status));
    synchronized (lock) {
      inboundDone = true;
    }
    release();
  }

  /**
   * Tells gRPC how the call ended, once: OK when the trailers are out, else {@code status}.
   * gRPC's stream state accepts only one of {@code complete()} and
   * {@code transportReportStatus()}, and after a failure the trailers can still go out.
   */
  private void reportOutcome(Status status) {
    synchronized (lock) {
      if (outcomeReported) {
        return;
      }
      outcomeReported = true;
    }
    sideChannels.callEnded(streamId, status, false);
    if (status.isOk()) {
      state.runOnTransportThread(state::complete);
    } else {
      state.runOnTransportThread(() -> state.transportReportStatus(status));
    }
  }

  private void release() {
    synchronized (lock) {
      if (released || !(inboundDone && outboundDone)) {
        return;
      }
      released = true;
    }
    connection.unregister(this);
    transport.streamReleased(this);
  }

  private final class Sink implements AbstractServerStream.Sink {
    @Override
    public void writeHeaders(Metadata headers, boolean flush) {
      writer.enqueue(HeaderBlock.encodeFrame(Wire.FRAME_HEADERS, headers, null, null,
          new byte[0]), flush);
    }

    @Override
    public void writeFrame(WritableBuffer frame, boolean flush, int numMessages) {
      int bytes = frame.readableBytes();
      if (bytes > 0) {
        onSendingBytes(bytes);
        writer.enqueue((DataFrameBuffer) frame, false);
      }
      if (flush) {
        writer.flush();
      }
    }

    @Override
    public void writeTrailers(Metadata trailers, boolean headersSent, Status status) {
      synchronized (lock) {
        if (trailersQueued) {
          return;
        }
        trailersQueued = true;
      }
      // The call's status, which the outcome reported later (OK: the trailers are out) is not.
      sideChannels.callEnded(streamId, status, false);
      writer.finish(
          HeaderBlock.encodeFrame(Wire.FRAME_TRAILERS, trailers, null, null, new byte[0]));
    }

    @Override
    public void cancel(Status status) {
      abortCall(status, Wire.errorCode(status));
    }
  }

  private final class WriterCallback implements StreamWriter.Callback {
    @Override
    public void written(int flowBytes) {
      state.runOnTransportThread(() -> state.onSentBytes(flowBytes));
    }

    @Override
    public void writeFailed(IOException e) {
      // The peer reset the stream or the connection broke: the call cannot finish.
      Status closed = connection.closedStatus();
      abortCall(closed != null ? closed
          : Status.CANCELLED.withDescription("peer stopped reading the response"),
          Wire.errorCode(Status.CANCELLED));
    }

    @Override
    public void finished() {
      boolean stopReading;
      synchronized (lock) {
        outboundDone = true;
        // The request's FIN may be read but not yet reported (halfClosed before endOfStream):
        // then there is nothing left to stop.
        stopReading = !inboundDone && !halfCloseSeen;
        if (stopReading) {
          inboundDone = true;
        }
      }
      if (stopReading) {
        // Trailers are out and the caller is still sending; the request's remainder is not
        // needed (as HTTP/2's RST_STREAM NO_ERROR after trailers). Releases the stream's credit.
        reader.abort(Wire.NO_ERROR);
      }
      reportOutcome(Status.OK);
      release();
    }
  }

  private final class ReaderHandler implements StreamReader.Handler {
    @Override
    public void headers(HeaderBlock.Decoded headers) {
      throw new AssertionError("the reader gives a request's HEADERS to requestHeaders");
    }

    @Override
    public void data(ReadableBuffer chunk) {
      state.runOnTransportThread(() -> state.inboundDataReceived(chunk, false));
    }

    @Override
    public void trailers(HeaderBlock.Decoded trailers) {
      throw new AssertionError("the reader rejects TRAILERS on request streams");
    }

    @Override
    public void halfClosed() {
      synchronized (lock) {
        halfCloseSeen = true;
      }
      state.runOnTransportThread(() -> state.inboundDataReceived(ReadableBuffers.empty(), true));
    }

    @Override
    public void endOfStream() {
      synchronized (lock) {
        inboundDone = true;
      }
      release();
    }

    @Override
    public void failed(Status status, boolean resetByPeer) {
      if (resetByPeer && writer.finTaken()) {
        // The call is closed and its last write (trailers, FIN) is under way or done; a caller
        // that was still sending resets its half once it has read the trailers (PROTOCOL.md,
        // section 4), and that reset can overtake the writer's own report. So the writer
        // decides the outcome: OK once the trailers are out, CANCELLED if it fails.
        synchronized (lock) {
          inboundDone = true;
        }
        release();
        return;
      }
      if (resetByPeer) {
        transport.peerResetCall();
      }
      // A closing connection (this side's shutdownNow, say) gets no trailers: they could
      // overtake the CONNECTION_CLOSE, and the caller must see the connection's status.
      if (resetByPeer || status.getCode() == Status.Code.UNAVAILABLE
          || connection.closedStatus() != null) {
        abortCall(status, QuicClientStream.resetCode(status, resetByPeer));
      } else {
        closeWithStatus(status); // protocol error or limit: tell the caller why
      }
    }
  }

  /** gRPC's per-stream state, driven on the serializing transport thread. */
  final class ServerState extends AbstractServerStream.TransportState {
    private final SerializingExecutor transportThread =
        new SerializingExecutor(MoreExecutors.directExecutor());

    ServerState(int maxMessageSize, StatsTraceContext statsTraceCtx, TransportTracer tracer) {
      super(maxMessageSize, statsTraceCtx, tracer);
    }

    @Override
    public void runOnTransportThread(Runnable r) {
      transportThread.execute(r);
    }

    @Override
    public void bytesRead(int numBytes) {
      reader.consumed(numBytes);
    }

    @Override
    public void deframeFailed(Throwable cause) {
      closeWithStatus(Status.fromThrowable(cause));
    }
  }

  @Override
  public String toString() {
    synchronized (lock) {
      return "call " + streamId + (inboundDone ? " in-done" : "") + (outboundDone ? " out-done" : "")
          + (halfCloseSeen ? " half-closed" : "") + (trailersQueued ? " trailers" : "")
          + (outcomeReported ? " reported" : "") + (released ? " released" : "") + " " + writer;
    }
  }
}
