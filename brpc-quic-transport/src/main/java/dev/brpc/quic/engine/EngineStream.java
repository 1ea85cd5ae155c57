package dev.brpc.quic.engine;

import java.io.IOException;

/**
 * One QUIC stream (see the package documentation). A stream the peer opened unidirectionally
 * can only be read; one this side opened unidirectionally can only be written.
 *
 * <p>Thread-safe, but reads must not run concurrently with each other, nor writes with each
 * other. No method blocks.
 */
public interface EngineStream {
  /**
   * The QUIC stream id (RFC 9000, section 2.1).
   *
   * @return the stream id
   */
  long id();

  /**
   * Whether the stream is bidirectional.
   *
   * @return true if bidirectional, false if unidirectional
   */
  boolean isBidirectional();

  /**
   * Starts delivering events to {@code handler}; called once, before the first write. If
   * something arrived before, {@link StreamHandler#readable} follows at once.
   *
   * @param handler receives the stream's events
   */
  void start(StreamHandler handler);

  /**
   * Copies up to {@code len} received bytes into {@code b}. Returns how many (0 if none are
   * there now: {@link StreamHandler#readable} says when more come), or -1 once every byte up to
   * the peer's FIN has been read. Reading credits the bytes to the peer (flow control).
   *
   * @param b the buffer to copy into
   * @param off where in {@code b} to start
   * @param len the most bytes to copy
   * @return the number of bytes copied, 0 if none are there now, or -1 at the end of the stream
   * @throws StreamException if the peer reset the stream ({@link StreamException.Kind#RESET}),
   *     this side stopped reading it, or the connection closed
   */
  int read(byte[] b, int off, int len) throws IOException;

  /**
   * Bytes that {@link #read} returns at once.
   *
   * @return how many bytes a read would copy now
   */
  int available();

  /**
   * This side reads no more: sends STOP_SENDING with {@code code} (RFC 9000, section 19.5).
   * The engine discards what still arrives, without losing the connection's flow-control
   * credit for it, until the peer answers with RESET_STREAM or its data ends; no more
   * {@link StreamHandler#readable} calls. May be called before {@link #start}. Idempotent.
   *
   * @param code the application error code for STOP_SENDING
   */
  void stopSending(long code);

  /**
   * How many bytes {@link #write} takes now; 0 when the stream's send buffer is full.
   *
   * @return the number of bytes {@link #write} takes now
   */
  int writableBytes();

  /**
   * Whether the stream takes bytes now. If not, {@link StreamHandler#writable} is called once
   * when it does (without this call, never).
   *
   * @return true if the stream takes bytes now
   */
  boolean requestWritable();

  /**
   * Sends {@code b[off, off + len)}, then the FIN if {@code fin}. {@code len} must not exceed
   * {@link #writableBytes()}; a FIN alone (len 0) is always taken.
   *
   * @param b the bytes to send
   * @param off where in {@code b} they start
   * @param len how many to send
   * @param fin whether to end the stream after them
   * @throws StreamException if the stream's send side is gone: reset by this side, or stopped
   *     by the peer (STOP_SENDING), or the connection closed. An engine that learns of it later
   *     reports {@link StreamHandler#writeFailed} instead.
   */
  void write(byte[] b, int off, int len, boolean fin) throws IOException;

  /**
   * Ends the send side abruptly: RESET_STREAM with {@code code} (RFC 9000, section 19.4),
   * unless the FIN was already written. Idempotent.
   *
   * @param code the application error code for RESET_STREAM
   */
  void reset(long code);
}
