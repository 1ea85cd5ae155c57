package dev.brpc.quic.internal;

import io.grpc.internal.WritableBuffer;
import io.grpc.internal.WritableBufferAllocator;

/**
 * A {@link WritableBuffer} that leaves room in front for a DATA frame header, so that grpc's
 * MessageFramer writes message bytes straight into what goes on the wire: one array, no copy.
 *
 * <p>Not thread-safe: owned by one writer at a time (the framer, then the stream writer).
 */
final class DataFrameBuffer implements WritableBuffer {
  /** Room for the type byte and the longest varint length. */
  private static final int HEADROOM = 1 + Varint.MAX_SIZE;
  private static final int MAX_CAPACITY = 1024 * 1024;
  private static final int MIN_CAPACITY = 256;

  static final WritableBufferAllocator ALLOCATOR = DataFrameBuffer::new;

  private final byte[] array;
  private int end = HEADROOM;
  private int start = -1;

  DataFrameBuffer(int capacityHint) {
    int capacity = Math.max(MIN_CAPACITY, Math.min(MAX_CAPACITY, capacityHint));
    array = new byte[HEADROOM + capacity];
  }

  @Override
  public void write(byte[] src, int srcIndex, int length) {
    System.arraycopy(src, srcIndex, array, end, length);
    end += length;
  }

  @Override
  public void write(byte b) {
    array[end++] = b;
  }

  @Override
  public int writableBytes() {
    return array.length - end;
  }

  @Override
  public int readableBytes() {
    return end - HEADROOM;
  }

  @Override
  public void release() {}

  /** Writes the DATA frame header in front of the payload; returns where the frame starts. */
  int seal() {
    if (start < 0) {
      int payload = readableBytes();
      start = HEADROOM - 1 - Varint.size(payload);
      array[start] = Wire.FRAME_DATA;
      Varint.write(payload, array, start + 1);
    }
    return start;
  }

  byte[] array() {
    return array;
  }

  int end() {
    return end;
  }
}
