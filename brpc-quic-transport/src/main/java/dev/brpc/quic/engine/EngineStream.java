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
  /** The QUIC stream id (RFC 9000, section 2.1). */
  long id();

  boolean isBidirectional();

  /**
   * Starts delivering events to {@code handler}; called once, before the first write. If
   * something arrived before, {@link StreamHandler#readable} follows at once.
   */
  void start(StreamHandler handler);

  /**
   * Copies up to {@code len} received bytes into {@code b}. Returns how many (0 if none are
   * there now: {@link StreamHandler#readable} says when more come), or -1 once every byte up to
   * the peer's FIN has been read. Reading credits the bytes to the peer (flow control).
   *
   * @throws StreamException if the peer reset the stream ({@link StreamException.Kind#RESET}),
   *     this side stopped reading it, or the connection closed
   */
  int read(byte[] b, int off, int len) throws IOException;

  /** Bytes that {@link #read} returns at once. */
  int available();

  /**
   * This side reads no more: sends STOP_SENDING with {@code code} (RFC 9000, section 19.5).
   * The engine discards what still arrives, without losing the connection's flow-control
   * credit for it, until the peer answers with RESET_STREAM or its data ends; no more
   * {@link StreamHandler#readable} calls. May be called before {@link #start}. Idempotent.
   */
  void stopSending(long code);

  /** How many bytes {@link #write} takes now; 0 when the stream's send buffer is full. */
  int writableBytes();

  /**
   * Whether the stream takes bytes now. If not, {@link StreamHandler#writable} is called once
   * when it does (without this call, never).
   */
  boolean requestWritable();

  /**
   * Sends {@code b[off, off + len)}, then the FIN if {@code fin}. {@code len} must not exceed
   * {@link #writableBytes()}; a FIN alone (len 0) is always taken.
   *
   * @throws StreamException if the stream's send side is gone: reset by this side, or stopped
   *     by the peer (STOP_SENDING), or the connection closed. An engine that learns of it later
   *     reports {@link StreamHandler#writeFailed} instead.
   */
  void write(byte[] b, int off, int len, boolean fin) throws IOException;

  /**
   * Ends the send side abruptly: RESET_STREAM with {@code code} (RFC 9000, section 19.4),
   * unless the FIN was already written. Idempotent.
   */
  void reset(long code);
}
