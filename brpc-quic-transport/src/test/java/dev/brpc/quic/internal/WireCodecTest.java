package dev.brpc.quic.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.Metadata;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class WireCodecTest {
  private static final Metadata.Key<String> ASCII =
      Metadata.Key.of("x-ascii", Metadata.ASCII_STRING_MARSHALLER);
  private static final Metadata.Key<byte[]> BIN =
      Metadata.Key.of("x-data-bin", Metadata.BINARY_BYTE_MARSHALLER);

  @Test
  void varint_roundTripsRfc9000Examples() throws IOException {
    // RFC 9000, appendix A.1 sample encodings.
    assertVarint(151288809941952652L, "c2197c5eff14e88c");
    assertVarint(494878333L, "9d7f3e7d");
    assertVarint(15293L, "7bbd");
    assertVarint(37L, "25");
    assertEquals(-1, Varint.read(new ByteArrayInputStream(new byte[0])));
    assertThrows(EOFException.class, () -> Varint.read(new ByteArrayInputStream(hex("7b"))));
    assertThrows(IllegalArgumentException.class, () -> Varint.size(Varint.MAX_VALUE + 1));
  }

  @Test
  void headerBlock_roundTripsPseudoFieldsAsciiAndBinary() throws Exception {
    Metadata md = new Metadata();
    md.put(ASCII, "hello world");
    md.put(ASCII, "second");
    md.put(BIN, new byte[] {0, 1, (byte) 0xff, '\n'});
    byte[] frame = HeaderBlock.encodeFrame(Wire.FRAME_HEADERS, md, "/svc/M", "example:1", new byte[0]);
    int[] pos = {0};
    assertEquals(Wire.FRAME_HEADERS, Varint.read(frame, pos, frame.length));
    long len = Varint.read(frame, pos, frame.length);
    assertEquals(frame.length - pos[0], len);

    HeaderBlock.Decoded d = HeaderBlock.decode(frame, pos[0], (int) len, true, 8192);
    assertEquals("/svc/M", d.path);
    assertEquals("example:1", d.authority);
    assertEquals(2, count(d.metadata.getAll(ASCII)));
    assertEquals("second", d.metadata.get(ASCII));
    assertArrayEquals(new byte[] {0, 1, (byte) 0xff, '\n'}, d.metadata.get(BIN));
  }

  @Test
  void headerBlock_overLimit_throwsTooLarge() {
    Metadata md = new Metadata();
    md.put(ASCII, "x".repeat(9000));
    byte[] frame = HeaderBlock.encodeFrame(Wire.FRAME_TRAILERS, md, null, null, new byte[0]);
    int[] pos = {0};
    assertThrows(MetadataTooLargeException.class, () -> {
      Varint.read(frame, pos, frame.length);
      long len = Varint.read(frame, pos, frame.length);
      HeaderBlock.decode(frame, pos[0], (int) len, false, 8192);
    });
  }

  @Test
  void headerBlock_malformed_throwsProtocolException() {
    // A field whose name length runs past the end.
    assertThrows(ProtocolException.class, () -> decode(hex("05616263"), false));
    // Upper-case names are not gRPC metadata.
    assertThrows(ProtocolException.class, () -> decode(field("X-Up", "v"), false));
    // Control characters in an ASCII value.
    assertThrows(ProtocolException.class, () -> decode(field("x-a", "a\rb"), false));
    // Pseudo-fields only at the start of a request.
    assertThrows(ProtocolException.class, () -> decode(field(":path", "/a/b"), false));
    // A request needs :path.
    assertThrows(ProtocolException.class, () -> decode(field("x-a", "v"), true));
  }

  @Test
  void headerBlock_requestWithoutAuthority_hasNullAuthority() throws Exception {
    HeaderBlock.Decoded d = decode(field(":path", "/a/b"), true);
    assertEquals("/a/b", d.path);
    assertNull(d.authority);
  }

  @Test
  void errorCodes_roundTripEveryStatusCode() {
    assertEquals(Wire.NO_ERROR, Wire.errorCode(Status.OK));
    for (Status.Code code : Status.Code.values()) {
      if (code == Status.Code.OK) {
        continue;
      }
      Status s = Status.fromCode(code);
      assertEquals(code, Wire.statusForErrorCode(Wire.errorCode(s), "reset").getCode());
    }
    assertEquals(Status.Code.UNAVAILABLE,
        Wire.statusForErrorCode(Wire.REFUSED_STREAM, "reset").getCode());
    assertEquals(Status.Code.INTERNAL, Wire.statusForErrorCode(0x7777, "reset").getCode());
  }

  private static HeaderBlock.Decoded decode(byte[] block, boolean request) throws Exception {
    return HeaderBlock.decode(block, 0, block.length, request, 8192);
  }

  private static byte[] field(String name, String value) {
    byte[] n = name.getBytes(StandardCharsets.US_ASCII);
    byte[] v = value.getBytes(StandardCharsets.US_ASCII);
    byte[] out = new byte[2 + n.length + v.length];
    out[0] = (byte) n.length;
    System.arraycopy(n, 0, out, 1, n.length);
    out[1 + n.length] = (byte) v.length;
    System.arraycopy(v, 0, out, 2 + n.length, v.length);
    return out;
  }

  private static void assertVarint(long value, String hex) throws IOException {
    byte[] expected = hex(hex);
    byte[] buf = new byte[Varint.size(value)];
    Varint.write(value, buf, 0);
    assertArrayEquals(expected, buf);
    assertEquals(value, Varint.read(new ByteArrayInputStream(expected)));
  }

  private static int count(Iterable<?> it) {
    int n = 0;
    for (Object ignored : it) {
      n++;
    }
    return n;
  }

  private static byte[] hex(String s) {
    byte[] out = new byte[s.length() / 2];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
    }
    return out;
  }
}
