package dev.brpc.quic.internal;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;

/**
 * QUIC variable-length integers (RFC 9000, section 16): the two high bits of the first byte
 * give the length (1, 2, 4 or 8 bytes), the rest is the value in network byte order.
 *
 * <p>Stateless; thread-safe.
 */
public final class Varint {
  /** The largest value a varint can carry: 2^62 - 1. */
  static final long MAX_VALUE = (1L << 62) - 1;
  /** The most bytes one varint takes. */
  static final int MAX_SIZE = 8;

  private Varint() {}

  /** How many bytes {@code value} takes on the wire. */
  static int size(long value) {
    if (value < 0 || value > MAX_VALUE) {
      throw new IllegalArgumentException("varint out of range: " + value);
    }
    if (value < (1 << 6)) {
      return 1;
    }
    if (value < (1 << 14)) {
      return 2;
    }
    if (value < (1L << 30)) {
      return 4;
    }
    return 8;
  }

  /** Writes {@code value} at {@code buf[offset]}; returns the offset after it. */
  static int write(long value, byte[] buf, int offset) {
    int size = size(value);
    int prefix = Integer.numberOfTrailingZeros(size) << 6; // 1->0, 2->1, 4->2, 8->3
    for (int i = size - 1; i >= 0; i--) {
      buf[offset + i] = (byte) value;
      value >>>= 8;
    }
    buf[offset] |= (byte) prefix;
    return offset + size;
  }

  /**
   * Reads one varint from {@code in}.
   *
   * @return the value, or -1 if the stream ended cleanly before its first byte
   * @throws EOFException if the stream ends inside the varint
   */
  static long read(InputStream in) throws IOException {
    int first = in.read();
    if (first < 0) {
      return -1;
    }
    int size = 1 << (first >>> 6);
    long value = first & 0x3f;
    for (int i = 1; i < size; i++) {
      int b = in.read();
      if (b < 0) {
        throw new EOFException("stream ended inside a varint");
      }
      value = (value << 8) | b;
    }
    return value;
  }

  /**
   * Reads one varint from {@code buf} starting at {@code pos[0]}, advancing {@code pos[0]}.
   *
   * @throws ProtocolException if the varint runs past {@code limit}
   */
  public static long read(byte[] buf, int[] pos, int limit) throws ProtocolException {
    int p = pos[0];
    if (p >= limit) {
      throw new ProtocolException("truncated varint");
    }
    int first = buf[p] & 0xff;
    int size = 1 << (first >>> 6);
    if (p + size > limit) {
      throw new ProtocolException("truncated varint");
    }
    long value = first & 0x3f;
    for (int i = 1; i < size; i++) {
      value = (value << 8) | (buf[p + i] & 0xff);
    }
    pos[0] = p + size;
    return value;
  }

  /**
   * Reads one varint from {@code buf} starting at {@code pos[0]} if all its bytes are before
   * {@code limit}, advancing {@code pos[0]}; otherwise returns -1 and leaves {@code pos[0]}.
   */
  static long readIfComplete(byte[] buf, int[] pos, int limit) {
    int p = pos[0];
    if (p >= limit || p + (1 << ((buf[p] & 0xff) >>> 6)) > limit) {
      return -1;
    }
    try {
      return read(buf, pos, limit);
    } catch (ProtocolException e) {
      throw new AssertionError(e); // checked above
    }
  }
}
