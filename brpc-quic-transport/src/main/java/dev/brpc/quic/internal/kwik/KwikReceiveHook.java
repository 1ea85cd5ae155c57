package dev.brpc.quic.internal.kwik;

import dev.brpc.quic.engine.StreamException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.Map;
import java.nio.ByteBuffer;
import java.util.logging.Level;
import java.util.logging.Logger;
import tech.kwik.core.QuicConnection;
import tech.kwik.core.QuicStream;
import tech.kwik.core.impl.QuicConnectionImpl;
import tech.kwik.core.stream.ReceiveBuffer;
import tech.kwik.core.stream.StreamManager;
import tech.kwik.core.stream.StreamElement;

/**
 * Tells us when a kwik stream has something to read, so that a call's frames can be parsed
 * where they arrive instead of on a reader thread blocked in kwik's {@code read}.
 *
 * <p>kwik 0.10.9 offers only blocking stream reads: a reader thread waits in {@code
 * StreamInputStreamImpl.read} and kwik's receiver thread wakes it. That wake-up is one thread
 * hand-off per call on each side, on top of the ones gRPC and kwik make anyway, and it was the
 * largest part of brpc's cost over raw kwik streams (BENCHMARKS.md). {@link #install} replaces
 * the stream's {@code ReceiveBuffer} by a wrapper that delegates everything to the original
 * and, after every {@code add} (new bytes or the FIN, on kwik's receiver thread) and every
 * {@code discardAllData} (the peer's RESET_STREAM on the receiver thread, an {@code
 * abortReading} on any thread), runs the listener. The listener then reads what is there
 * with {@link Input#read}, which never blocks.
 *
 * <p>{@link Input#read} is kwik's {@code StreamInputStreamImpl.read} without the wait: under
 * the same monitor it checks the same flags, reads from the buffer and credits the bytes to
 * the stream's and the connection's windows ({@code updateAllowedFlowControl}), or at the end
 * releases the stream ({@code allDataRead}). It does not call kwik's {@code read} itself,
 * because that records the calling thread as the stream's blocked reader, and kwik interrupts
 * that thread on a reset or an abort: here that would be kwik's receiver thread, or an
 * application thread, left with a stray interrupt.
 *
 * <p>The swap is made holding the stream's {@code addMonitor}, the lock under which kwik reads
 * the field and adds a frame: an {@code add} either finished on the old buffer before it (the
 * listener's first run, right after {@link #install}, sees those bytes) or runs on the
 * wrapper after it. The wrapper keeps the original buffer, so nothing in it is lost.
 *
 * <p>The listener runs inside kwik's {@code add}, holding the stream's {@code addMonitor}, on
 * kwik's receiver thread: it must never block, and whatever it throws is caught and logged
 * here, since an exception would end kwik's packet processing.
 *
 * <p>On the module path this needs kwik's {@code tech.kwik.core.stream} and {@code
 * tech.kwik.core.impl} packages opened to brpc-java; {@link #requireAvailable()} says so at
 * build time ({@link KwikSendFix#unusable}).
 *
 * <p>Thread-safe.
 */
final class KwikReceiveHook {
  private static final Logger log = Logger.getLogger(KwikReceiveHook.class.getName());
  private static final Field RECEIVE_BUFFER;
  private static final Field ADD_MONITOR;
  private static final MethodHandle ABORTED;
  private static final MethodHandle CLOSED;
  private static final MethodHandle RESET;
  private static final MethodHandle CREDIT;
  private static final MethodHandle END;
  private static final Method STREAM_MANAGER;
  private static final Field STREAMS;
  private static final RuntimeException UNAVAILABLE;

  static {
    Field buffer = null;
    Field monitor = null;
    MethodHandle aborted = null;
    MethodHandle closed = null;
    MethodHandle reset = null;
    MethodHandle credit = null;
    MethodHandle end = null;
    Method manager = null;
    Field streams = null;
    RuntimeException error = null;
    try {
      Class<?> c = Class.forName("tech.kwik.core.stream.StreamInputStreamImpl");
      buffer = c.getDeclaredField("receiveBuffer");
      monitor = c.getDeclaredField("addMonitor");
      if (buffer.getType() != ReceiveBuffer.class || monitor.getType() != Object.class) {
        throw new NoSuchFieldException("unexpected field types");
      }
      buffer.setAccessible(true);
      monitor.setAccessible(true);
      MethodHandles.Lookup lookup = MethodHandles.privateLookupIn(c, MethodHandles.lookup());
      MethodType asObject = MethodType.methodType(boolean.class, Object.class);
      aborted = lookup.findGetter(c, "aborted", boolean.class).asType(asObject);
      closed = lookup.findGetter(c, "closed", boolean.class).asType(asObject);
      reset = lookup.findGetter(c, "reset", boolean.class).asType(asObject);
      credit = lookup.findVirtual(c, "updateAllowedFlowControl",
          MethodType.methodType(void.class, int.class))
          .asType(MethodType.methodType(void.class, Object.class, int.class));
      end = lookup.findVirtual(c, "allDataRead", MethodType.methodType(void.class))
          .asType(MethodType.methodType(void.class, Object.class));
      manager = QuicConnectionImpl.class.getDeclaredMethod("getStreamManager");
      manager.setAccessible(true);
      streams = StreamManager.class.getDeclaredField("streams");
      streams.setAccessible(true);
    } catch (ReflectiveOperationException | RuntimeException e) {
      buffer = null;
      monitor = null;
      error = KwikSendFix.unusable("hook into kwik's stream input", e);
    }
    RECEIVE_BUFFER = buffer;
    ADD_MONITOR = monitor;
    ABORTED = aborted;
    CLOSED = closed;
    RESET = reset;
    CREDIT = credit;
    END = end;
    STREAM_MANAGER = manager;
    STREAMS = streams;
    UNAVAILABLE = error;
  }

  private KwikReceiveHook() {}

  /** Throws if the hook cannot be installed in this JVM. */
  static void requireAvailable() {
    if (UNAVAILABLE != null) {
      throw UNAVAILABLE;
    }
  }

  /** A hooked stream's input; never blocks. */
  interface Input {
    /** Bytes that {@link #read} returns at once. */
    int available();

    /**
     * Reads what kwik holds, up to {@code len} bytes. Returns how many (0 if none are there
     * yet), or -1 at the end of the stream (the FIN).
     *
     * @throws StreamException if the stream was reset by the peer, its input aborted, or the
     *     connection closed, as kwik's {@code read} says; an IOException if kwik's read failed
     *     otherwise
     */
    int read(byte[] b, int off, int len) throws IOException;
  }

  /**
   * Hooks {@code listener} into {@code stream}'s input; returns the view of that input. Any
   * thread. Call the listener once after this, for what arrived before.
   */
  static Input install(QuicStream stream, Runnable listener) {
    requireAvailable();
    InputStream in = stream.getInputStream();
    if (!RECEIVE_BUFFER.getDeclaringClass().isInstance(in)) {
      throw new IllegalStateException("not a kwik stream input: " + in.getClass());
    }
    try {
      Object monitor = ADD_MONITOR.get(in);
      synchronized (monitor) {
        ReceiveBuffer old = (ReceiveBuffer) RECEIVE_BUFFER.get(in);
        if (old instanceof Hooked) {
          throw new IllegalStateException("stream " + stream.getStreamId() + " already hooked");
        }
        Hooked hooked = new Hooked(old, listener, in, monitor);
        RECEIVE_BUFFER.set(in, hooked);
        return hooked;
      }
    } catch (IllegalAccessException e) {
      throw new IllegalStateException("cannot hook a kwik stream", e);
    }
  }

  /**
   * The connection is gone: every hooked stream of {@code quic} reads "Connection closed"
   * from now on, and its listener runs. kwik only flags a closed connection's streams (no add,
   * no discard, and the flag may come after its terminated event), which would leave a
   * listener waiting for bytes (a call before its HEADERS, a drain after STOP_SENDING) until
   * its timer. Any thread; once per connection.
   */
  static void connectionClosed(QuicConnection quic) {
    if (UNAVAILABLE != null || !(quic instanceof QuicConnectionImpl)) {
      return;
    }
    try {
      Map<?, ?> streams = (Map<?, ?>) STREAMS.get(STREAM_MANAGER.invoke(quic));
      for (Object stream : streams.values()) {
        Object in = ((QuicStream) stream).getInputStream();
        if (RECEIVE_BUFFER.getDeclaringClass().isInstance(in)) {
          Object buffer = RECEIVE_BUFFER.get(in);
          if (buffer instanceof Hooked) {
            ((Hooked) buffer).connectionClosed();
          }
        }
      }
    } catch (ReflectiveOperationException | RuntimeException e) {
      log.log(Level.FINE, "could not tell hooked streams that their connection closed", e);
    }
  }

  /** For diagnostics: the buffer kwik made, behind the hook if there is one. */
  static Object unwrap(Object receiveBuffer) {
    return receiveBuffer instanceof Hooked ? ((Hooked) receiveBuffer).delegate : receiveBuffer;
  }

  private static final class Hooked implements ReceiveBuffer, Input {
    private final ReceiveBuffer delegate;
    private final Runnable listener;
    /** kwik's StreamInputStreamImpl; typed Object for the method handles' exact invocation. */
    private final Object kwikInput;
    private final Object monitor;
    private volatile boolean connectionClosed;

    Hooked(ReceiveBuffer delegate, Runnable listener, Object kwikInput, Object monitor) {
      this.delegate = delegate;
      this.listener = listener;
      this.kwikInput = kwikInput;
      this.monitor = monitor;
    }

    @Override
    public int available() {
      return (int) Math.min(Integer.MAX_VALUE, delegate.bytesAvailable());
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (len == 0) {
        return 0;
      }
      synchronized (monitor) {
        checkOpen();
        int n;
        try {
          n = delegate.read(ByteBuffer.wrap(b, off, len));
        } catch (RuntimeException raced) {
          // kwik's read races with discardAllData (a reset or an abort on another thread,
          // outside this monitor), whose flags are set first, so checkOpen reports the reset.
          checkOpen();
          throw new IOException("kwik stream read failed: " + raced, raced);
        }
        if (n == 0) {
          checkOpen(); // a reset that emptied the buffer after the first check
        }
        try {
          if (n > 0) {
            CREDIT.invokeExact(kwikInput, n);
          } else if (n < 0) {
            END.invokeExact(kwikInput);
          }
        } catch (Throwable t) {
          throw unchecked(t);
        }
        return n;
      }
    }

    /** What a method handle threw: they declare Throwable, and throw nothing checked. */
    private static RuntimeException unchecked(Throwable t) {
      if (t instanceof Error) {
        throw (Error) t;
      }
      return t instanceof RuntimeException ? (RuntimeException) t : new IllegalStateException(t);
    }

    void connectionClosed() {
      connectionClosed = true;
      notifyListener();
    }

    private void checkOpen() throws IOException {
      if (connectionClosed) {
        throw new StreamException(StreamException.Kind.CONNECTION_CLOSED, -1, "Connection closed");
      }
      boolean aborted;
      boolean closed;
      boolean reset;
      try {
        aborted = (boolean) ABORTED.invokeExact(kwikInput);
        closed = (boolean) CLOSED.invokeExact(kwikInput);
        reset = (boolean) RESET.invokeExact(kwikInput);
      } catch (Throwable t) {
        throw unchecked(t);
      }
      // kwik's own words; kwik 0.10.9 does not keep the code of the peer's RESET_STREAM.
      if (aborted) {
        throw new StreamException(StreamException.Kind.CONNECTION_CLOSED, -1, "Connection closed");
      } else if (closed) {
        throw new StreamException(StreamException.Kind.LOCAL, -1, "Stream closed");
      } else if (reset) {
        throw new StreamException(StreamException.Kind.RESET, -1, "Stream reset by peer");
      }
    }

    @Override
    public boolean add(StreamElement frame) {
      boolean added = delegate.add(frame);
      notifyListener();
      return added;
    }

    @Override
    public void discardAllData() {
      delegate.discardAllData();
      notifyListener();
    }

    private void notifyListener() {
      try {
        listener.run();
      } catch (Throwable t) {
        // Never into kwik's receiver loop: it would drop the rest of the packet.
        log.log(Level.SEVERE, "stream input listener failed", t);
      }
    }

    @Override
    public long bytesAvailable() {
      return delegate.bytesAvailable();
    }

    @Override
    public boolean allRead() {
      return delegate.allRead();
    }

    @Override
    public int read(ByteBuffer buffer) {
      return delegate.read(buffer);
    }

    @Override
    public boolean allDataReceived() {
      return delegate.allDataReceived();
    }

    @Override
    public long readOffset() {
      return delegate.readOffset();
    }
  }
}
