package dev.brpc.quic.internal;

import com.google.common.util.concurrent.MoreExecutors;
import dev.brpc.quic.engine.EngineStream;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.InternalStatus;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.internal.AbstractClientStream;
import io.grpc.internal.ClientStreamListener.RpcProgress;
import io.grpc.internal.GrpcUtil;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.SerializingExecutor;
import io.grpc.internal.StatsTraceContext;
import io.grpc.internal.TransportTracer;
import io.grpc.internal.WritableBuffer;
import java.io.IOException;

/**
 * One call as its caller sees it: a QUIC bidirectional stream this side opens. Request
 * HEADERS, DATA and FIN (the half-close) go out through a {@link StreamWriter}; the response
 * comes in through a {@link StreamReader}. A cancel resets the stream, or, once FIN is out,
 * sends CANCEL on the control stream (PROTOCOL.md section 4). A unary call usually makes no
 * thread hand-off of its own: the stream is opened and the request written on the calling
 * thread when neither has to wait ({@link Connection#openStream}, {@link StreamWriter}), and
 * the response is parsed on the engine's thread as it arrives ({@link StreamReader}).
 *
 * <p>Thread-safe. gRPC's transport thread is a {@link SerializingExecutor} over the calling
 * thread: frames are delivered on the thread that parsed them (usually the engine's thread)
 * without a hop unless another thread is already running transport work for this
 * stream. Nothing on it blocks; gRPC hands the application's callbacks to the call's executor.
 * With a direct executor they run on the engine's thread and must not block, as they must
 * not block Netty's event loop.
 */
final class QuicClientStream extends AbstractClientStream implements Connection.Stream {
  private final QuicClientTransport transport;
  private final Connection connection;
  private final String fullMethodName;
  private final boolean sendsOneMessage;
  private final String userAgent;
  private final Attributes attributes;
  private final ClientState state;
  private final Sink sink = new Sink();
  private final StreamWriter writer;
  /** The call's side channels (PROTOCOL.md section 7), if its options have them. */
  private final SideChannelSlot sideChannels;
  private volatile String authority;

  private final Object lock = new Object();
  @GuardedBy("lock") private StreamReader reader;
  @GuardedBy("lock") private EngineStream quicStream;
  @GuardedBy("lock") private boolean cancelled;
  @GuardedBy("lock") private boolean inboundDone;
  @GuardedBy("lock") private boolean outboundDone;
  @GuardedBy("lock") private boolean released;
  @GuardedBy("lock") private boolean halfCloseQueued;

  QuicClientStream(QuicClientTransport transport, Connection connection,
      MethodDescriptor<?, ?> method, Metadata headers, CallOptions callOptions,
      StatsTraceContext statsTraceCtx, TransportTracer tracer, String authority,
      String userAgent, Attributes attributes, int maxInboundMessageSize) {
    super(DataFrameBuffer.ALLOCATOR, statsTraceCtx, tracer, headers, callOptions, false);
    this.transport = transport;
    this.connection = connection;
    this.fullMethodName = method.getFullMethodName();
    this.sendsOneMessage = method.getType().clientSendsOneMessage();
    this.authority = authority;
    this.userAgent = userAgent;
    this.attributes = attributes;
    this.state = new ClientState(maxInboundMessageSize, statsTraceCtx, tracer, callOptions);
    this.writer = new StreamWriter(new WriterCallback());
    this.sideChannels = dev.brpc.quic.SideChannels.internalSlot(callOptions);
  }

  /**
   * The call ended with {@code status} as this side sees it: its side channels follow. With no
   * stream (the call failed before one opened), a slot no attempt has bound ends too.
   */
  private void sideChannelsEnded(EngineStream stream, Status status) {
    if (sideChannels == null) {
      return;
    }
    if (stream != null) {
      sideChannels.callEnded(stream.id(), status, true);
    } else {
      sideChannels.endUnbound(status);
    }
  }

  @Override
  protected ClientState transportState() {
    return state;
  }

  @Override
  protected Sink abstractClientStreamSink() {
    return sink;
  }

  @Override
  public void setAuthority(String authority) {
    this.authority = authority;
  }

  @Override
  public Attributes getAttributes() {
    return attributes;
  }

  /**
   * The connection closed under the call. The stream is dead already: no reset is sent
   * (one could overtake the CONNECTION_CLOSE and tell the peer CANCELLED instead).
   */
  @Override
  public void connectionClosed(Status status) {
    fail(status, RpcProgress.PROCESSED, -1);
  }

  /**
   * Ends the call locally with {@code status}, resetting the stream with {@code resetCode}
   * (none if negative). Any thread.
   */
  private void fail(Status status, RpcProgress progress, long resetCode) {
    StreamReader r;
    EngineStream q;
    boolean responseDone;
    synchronized (lock) {
      if (cancelled) {
        // The first failure decides the outcome. A later one is usually its echo (the peer
        // answering our reset with its own) and must not replace the status of a cancel.
        return;
      }
      cancelled = true;
      r = reader;
      q = quicStream;
      responseDone = inboundDone;
      outboundDone = true;
      inboundDone = true;
    }
    if (!writer.reset(resetCode) && writer.finTaken() && q != null && !responseDone
        && resetCode > Wire.NO_ERROR) {
      // The request is finished (FIN): QUIC ignores a reset now, and the callee, which may
      // have read the FIN, would not see one. CANCEL tells it on the control stream.
      connection.sendCancel(q, resetCode);
    }
    if (r != null) {
      r.abort(resetCode);
    }
    sideChannelsEnded(q, status);
    state.runOnTransportThread(
        () -> state.transportReportStatus(status, progress, true, new Metadata()));
    release();
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

  private void inboundFinished() {
    boolean halfClosed;
    synchronized (lock) {
      inboundDone = true;
      halfClosed = halfCloseQueued;
    }
    // The response is read. If we were still sending, stop (PROTOCOL.md, section 4); else our
    // FIN is out or on its way, and the writer reports when it is.
    if (!halfClosed) {
      writer.reset(Wire.NO_ERROR);
      synchronized (lock) {
        outboundDone = true;
      }
    }
    release();
  }

  private final class Sink implements AbstractClientStream.Sink {
    @Override
    public void writeHeaders(Metadata metadata, byte[] payload) {
      metadata.discardAll(GrpcUtil.USER_AGENT_KEY);
      metadata.put(GrpcUtil.USER_AGENT_KEY, userAgent);
      byte[] frame = HeaderBlock.encodeFrame(
          Wire.FRAME_HEADERS, metadata, "/" + fullMethodName, authority, new byte[0]);
      // A call that sends one message follows at once with it and the half-close (FIN), which
      // flushes: the request then leaves as one write, usually one packet.
      writer.enqueue(frame, !sendsOneMessage);
      Status refusal = connection.register(QuicClientStream.this);
      if (refusal == null) {
        refusal = transport.streamStarted(QuicClientStream.this);
      }
      if (refusal != null) {
        synchronized (lock) {
          inboundDone = true;
          outboundDone = true;
        }
        Status s = refusal;
        sideChannelsEnded(null, s);
        state.runOnTransportThread(() -> state.transportReportStatus(
            s, RpcProgress.MISCARRIED, true, new Metadata()));
        release();
        return;
      }
      connection.openStream(new Connection.OpenCallback() {
        @Override
        public boolean opened(EngineStream stream) {
          StreamReader r = new StreamReader(stream, new ReaderHandler(), connection, false);
          if (sideChannels != null) {
            // Before the request leaves (the callee may open a side channel once it has it),
            // and before the stream is published: a failure from then on ends the bound slot.
            sideChannels.bind(connection, stream.id());
          }
          synchronized (lock) {
            if (cancelled) {
              sideChannelsEnded(stream, Status.CANCELLED.withDescription("call cancelled"));
              return false;
            }
            reader = r;
            quicStream = stream;
          }
          // Before the writer starts: its progress reports need an allocated stream.
          state.runOnTransportThread(state::onStreamAllocated);
          // Started before the request leaves, so before anything can arrive.
          r.start(new StreamEvents().reader(r).writer(writer));
          writer.attach(stream);
          return true;
        }

        @Override
        public void failed(Status status) {
          fail(status, RpcProgress.MISCARRIED, Wire.errorCode(Status.CANCELLED));
        }
      });
      statsTraceCtx().clientOutboundHeaders();
    }

    @Override
    public void writeFrame(WritableBuffer frame, boolean endOfStream, boolean flush,
        int numMessages) {
      if (frame != null) {
        int bytes = frame.readableBytes();
        if (bytes > 0) {
          onSendingBytes(bytes);
          writer.enqueue((DataFrameBuffer) frame, false);
        }
      }
      if (endOfStream) {
        synchronized (lock) {
          halfCloseQueued = true;
        }
        writer.finish(); // FIN is the half-close
      } else if (flush) {
        writer.flush();
      }
    }

    @Override
    public void cancel(Status status) {
      fail(status, RpcProgress.PROCESSED, Wire.errorCode(status));
    }
  }

  private StatsTraceContext statsTraceCtx() {
    return state.getStatsTraceContext();
  }

  private final class WriterCallback implements StreamWriter.Callback {
    @Override
    public void written(int flowBytes) {
      state.runOnTransportThread(() -> state.onSentBytes(flowBytes));
    }

    @Override
    public void writeFailed(IOException e) {
      // The peer stopped reading (STOP_SENDING) or the connection broke. The reader learns
      // the call's outcome: trailers, a reset, or the connection's status.
      synchronized (lock) {
        outboundDone = true;
      }
      release();
    }

    @Override
    public void finished() {
      synchronized (lock) {
        outboundDone = true;
      }
      release();
    }
  }

  private final class ReaderHandler implements StreamReader.Handler {
    @Override
    public void headers(HeaderBlock.Decoded headers) {
      state.runOnTransportThread(() -> state.inboundHeadersReceived(headers.metadata));
    }

    @Override
    public void data(ReadableBuffer chunk) {
      state.runOnTransportThread(() -> state.inboundDataReceived(chunk));
    }

    @Override
    public void trailers(HeaderBlock.Decoded block) {
      Metadata trailers = block.metadata;
      Status status = trailers.get(InternalStatus.CODE_KEY);
      if (status == null) {
        status = Status.UNKNOWN.withDescription("missing grpc-status in trailers");
      } else {
        String message = trailers.get(InternalStatus.MESSAGE_KEY);
        status = message == null ? status : status.withDescription(message);
      }
      trailers.discardAll(InternalStatus.CODE_KEY);
      trailers.discardAll(InternalStatus.MESSAGE_KEY);
      boolean refused = trailers.containsKey(StreamRejector.REFUSED_KEY);
      trailers.discardAll(StreamRejector.REFUSED_KEY);
      Status s = status;
      EngineStream q;
      synchronized (lock) {
        q = quicStream;
      }
      sideChannelsEnded(q, refused ? Status.UNAVAILABLE.withDescription("call refused") : s);
      if (refused) {
        state.runOnTransportThread(
            () -> state.transportReportStatus(s, RpcProgress.REFUSED, true, trailers));
      } else {
        state.runOnTransportThread(() -> state.inboundTrailersReceived(trailers, s));
      }
    }

    @Override
    public void endOfStream() {
      inboundFinished();
    }

    @Override
    public void failed(Status status, boolean resetByPeer) {
      fail(status, RpcProgress.PROCESSED, resetCode(status, resetByPeer));
    }
  }

  /** The code for resetting our halves after the inbound half failed with {@code status}. */
  static long resetCode(Status status, boolean resetByPeer) {
    if (resetByPeer) {
      return Wire.NO_ERROR;
    }
    return status.getCode() == Status.Code.INTERNAL ? Wire.PROTOCOL_ERROR : Wire.errorCode(status);
  }

  /** gRPC's per-stream state, driven on the serializing transport thread. */
  final class ClientState extends AbstractClientStream.TransportState {
    private final SerializingExecutor transportThread =
        new SerializingExecutor(MoreExecutors.directExecutor());

    ClientState(int maxMessageSize, StatsTraceContext statsTraceCtx, TransportTracer tracer,
        CallOptions options) {
      super(maxMessageSize, statsTraceCtx, tracer, options);
    }

    @Override
    public void runOnTransportThread(Runnable r) {
      transportThread.execute(r);
    }

    @Override
    public void bytesRead(int numBytes) {
      StreamReader r;
      synchronized (lock) {
        r = reader;
      }
      if (r != null) {
        r.consumed(numBytes);
      }
    }

    @Override
    public void deframeFailed(Throwable cause) {
      Status status = Status.fromThrowable(cause);
      fail(status, RpcProgress.PROCESSED, Wire.errorCode(Status.CANCELLED));
    }


    // Re-declared so that the rest of this file (the same package) may call them.
    @Override
    protected void onStreamAllocated() {
      super.onStreamAllocated();
    }

    @Override
    protected void inboundHeadersReceived(Metadata headers) {
      super.inboundHeadersReceived(headers);
    }

    @Override
    protected void inboundDataReceived(ReadableBuffer frame) {
      super.inboundDataReceived(frame);
    }

    @Override
    protected void inboundTrailersReceived(Metadata trailers, Status status) {
      super.inboundTrailersReceived(trailers, status);
    }
  }
}
