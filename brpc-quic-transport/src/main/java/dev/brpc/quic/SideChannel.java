package dev.brpc.quic;

import java.io.Closeable;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * A raw byte stream beside a gRPC call, in both directions, over its own QUIC stream of the
 * call's connection: no gRPC framing, no protobuf, its own flow control. For file transfer and
 * bulk output. Opened or accepted through the call's {@link SideChannels}.
 *
 * <p>Like a socket's streams: {@link #input()} blocks until bytes arrive and returns -1 at the
 * peer's end (it closed its output); {@link #output()} blocks while the peer does not read
 * (QUIC flow control), so neither side ever buffers more than a stream window. Both throw
 * {@link java.io.IOException} once the channel fails: the peer cancelled it, the call ended
 * with an error or was cancelled, or the connection closed.
 *
 * <p>Bound to its call (PROTOCOL.md section 7): when the call ends with an error or is
 * cancelled, its side channels are reset; when it ends OK, an output not closed by then is
 * reset, while bytes whose sender had closed its output are still delivered. Close every side
 * channel you open or accept, as you would a file: a channel that is neither read to its end
 * nor closed keeps its QUIC stream, and a graceful shutdown waits for it.
 *
 * <p>Thread-safe: one thread may read while another writes; reads must not run concurrently
 * with each other, nor writes. Never use it on a thread that must not block (a transport or
 * event-loop thread).
 */
public interface SideChannel extends Closeable {
  /**
   * The bytes the peer sends; -1 once it closed its output.
   *
   * @return the input stream of this channel
   */
  InputStream input();

  /**
   * The bytes sent to the peer: each write returns once the QUIC stream has taken the bytes;
   * {@code close()} ends the output (the peer reads -1) and does not block; closed while a
   * write runs on another thread, the output is reset instead (the peer's read fails), and
   * that write fails.
   *
   * @return the output stream of this channel
   */
  OutputStream output();

  /**
   * Ends both directions gracefully: closes the output (if not closed) and stops reading the
   * input (the peer's further writes fail). Idempotent.
   */
  @Override
  void close();

  /**
   * Ends both directions abruptly: the peer's reads and writes fail. Idempotent.
   */
  void cancel();
}
