package dev.brpc.tcp;

import io.grpc.Drainable;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * The tunnel's wire (PROTOCOL.md, section 8): two bidirectional-streaming gRPC methods whose
 * messages are tunnel frames, each a type byte and its fields, integers as QUIC varints
 * (RFC 9000, section 16).
 *
 * <p>Stateless; thread-safe.
 */
final class Tunnel {
  private Tunnel() {}

  static final String SERVICE = "brpc.tunnel.v1.Tunnel";
  static final int VERSION = 1;

  /** A frame type on the Connect call. */
  static final byte HELLO = 0x01;
  static final byte WELCOME = 0x02;
  static final byte OPEN = 0x03;
  static final byte MAX_STREAMS = 0x04;
  static final byte CLOSE = 0x05;
  /** A frame type on a Stream call. */
  static final byte ATTACH = 0x10;
  static final byte DATA = 0x11;
  static final byte DATA_FIN = 0x12;
  static final byte RESET = 0x13;
  static final byte STOP = 0x14;

  static final int TOKEN_SIZE = 16;
  /** The most payload bytes one DATA frame carries. */
  static final int CHUNK = 64 * 1024;
  /** The largest frame a peer may send (a DATA frame of CHUNK bytes, or a CLOSE's reason). */
  static final int MAX_FRAME = CHUNK + 16;


  /** Frames as byte arrays, handed to grpc without a copy. */
  static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) {
      return new Frame(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  };

  static final MethodDescriptor<byte[], byte[]> CONNECT = method("Connect");
  static final MethodDescriptor<byte[], byte[]> STREAM = method("Stream");

  private static MethodDescriptor<byte[], byte[]> method(String name) {
    return MethodDescriptor.<byte[], byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.BIDI_STREAMING)
        .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, name))
        .setRequestMarshaller(BYTES)
        .setResponseMarshaller(BYTES)
        .build();
  }

  private static final class Frame extends ByteArrayInputStream implements KnownLength, Drainable {
    Frame(byte[] b) {
      super(b);
    }

    @Override
    public int drainTo(OutputStream target) throws IOException {
      int n = count - pos;
      target.write(buf, pos, n);
      pos = count;
      return n;
    }
  }

  // Varints (RFC 9000, section 16).

  static int varintSize(long v) {
    return v < 0x40 ? 1 : v < 0x4000 ? 2 : v < 0x40000000 ? 4 : 8;
  }

  static int writeVarint(long v, byte[] b, int off) {
    int n = varintSize(v);
    long tag = n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : 3;
    long x = v | (tag << (8 * n - 2));
    for (int i = n - 1; i >= 0; i--) {
      b[off + i] = (byte) x;
      x >>>= 8;
    }
    return off + n;
  }

  /** Reads fields of one frame; a short or malformed frame throws {@link Malformed}. */
  static final class Reader {
    private final byte[] b;
    private int pos;

    Reader(byte[] b, int pos) {
      this.b = b;
      this.pos = pos;
    }

    long varint() {
      if (pos >= b.length) {
        throw new Malformed("frame too short");
      }
      int n = 1 << ((b[pos] & 0xff) >> 6);
      if (pos + n > b.length) {
        throw new Malformed("frame too short");
      }
      long v = b[pos] & 0x3f;
      for (int i = 1; i < n; i++) {
        v = (v << 8) | (b[pos + i] & 0xff);
      }
      pos += n;
      return v;
    }

    int u8() {
      if (pos >= b.length) {
        throw new Malformed("frame too short");
      }
      return b[pos++] & 0xff;
    }

    byte[] bytes(int n) {
      if (pos + n > b.length) {
        throw new Malformed("frame too short");
      }
      byte[] out = java.util.Arrays.copyOfRange(b, pos, pos + n);
      pos += n;
      return out;
    }

    String rest() {
      String s = new String(b, pos, b.length - pos, StandardCharsets.UTF_8);
      pos = b.length;
      return s;
    }

    void end() {
      if (pos != b.length) {
        throw new Malformed("trailing bytes in frame");
      }
    }
  }

  /** A frame that does not parse. */
  static final class Malformed extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Malformed(String message) {
      super(message);
    }
  }

  /** A frame of {@code type} with varint fields. */
  static byte[] frame(byte type, long... fields) {
    int size = 1;
    for (long f : fields) {
      size += varintSize(f);
    }
    byte[] b = new byte[size];
    b[0] = type;
    int off = 1;
    for (long f : fields) {
      off = writeVarint(f, b, off);
    }
    return b;
  }

  /** A frame of {@code type}, varint fields, then {@code tail}. */
  static byte[] frame(byte type, byte[] tail, long... fields) {
    byte[] head = frame(type, fields);
    byte[] b = java.util.Arrays.copyOf(head, head.length + tail.length);
    System.arraycopy(tail, 0, b, head.length, tail.length);
    return b;
  }

  static byte[] utf8(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    return b.length <= 1024 ? b : java.util.Arrays.copyOf(b, 1024);
  }
}
