package dev.brpc.quic.internal;

import io.grpc.InternalMetadata;
import io.grpc.Metadata;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Encodes and decodes header blocks: the payload of HEADERS, TRAILERS and SETTINGS frames
 * (PROTOCOL.md, "Header blocks"). A block is a sequence of fields, each {@code varint
 * name-length, name, varint value-length, value}. Names are lower-case ASCII; {@code -bin}
 * values are raw bytes (no base64, unlike HTTP/2), other values printable ASCII. A request's
 * HEADERS start with the pseudo-fields {@code :path} and optionally {@code :authority}.
 *
 * <p>Stateless; thread-safe.
 */
final class HeaderBlock {
  /** Per-field overhead counted against the metadata limit, as in HTTP/2 (RFC 9113, 6.5.2). */
  static final int FIELD_OVERHEAD = 32;

  private static final byte[] PATH = Wire.PATH.getBytes(StandardCharsets.US_ASCII);
  private static final byte[] AUTHORITY = Wire.AUTHORITY.getBytes(StandardCharsets.US_ASCII);

  private HeaderBlock() {}

  /** A decoded block: the pseudo-fields (null when absent) and the metadata. */
  static final class Decoded {
    final String path;
    final String authority;
    final Metadata metadata;

    Decoded(String path, String authority, Metadata metadata) {
      this.path = path;
      this.authority = authority;
      this.metadata = metadata;
    }
  }

  /**
   * Encodes a whole frame, {@code type}, length and header block, ready to write.
   *
   * @param path {@code :path} for a request's HEADERS; null otherwise
   * @param authority {@code :authority}; null to omit
   * @param prefix bytes placed between the frame header and the block (SETTINGS uses it);
   *     empty for call frames
   */
  static byte[] encodeFrame(int type, Metadata metadata, String path, String authority,
      byte[] prefix) {
    byte[][] fields = InternalMetadata.serialize(metadata);
    int payload = prefix.length;
    byte[] pathBytes = path == null ? null : path.getBytes(StandardCharsets.UTF_8);
    byte[] authorityBytes =
        authority == null ? null : authority.getBytes(StandardCharsets.UTF_8);
    if (pathBytes != null) {
      payload += fieldSize(PATH, pathBytes);
    }
    if (authorityBytes != null) {
      payload += fieldSize(AUTHORITY, authorityBytes);
    }
    for (int i = 0; i < fields.length; i += 2) {
      payload += fieldSize(fields[i], fields[i + 1]);
    }
    byte[] out = new byte[Varint.size(type) + Varint.size(payload) + payload];
    int pos = Varint.write(type, out, 0);
    pos = Varint.write(payload, out, pos);
    System.arraycopy(prefix, 0, out, pos, prefix.length);
    pos += prefix.length;
    if (pathBytes != null) {
      pos = writeField(PATH, pathBytes, out, pos);
    }
    if (authorityBytes != null) {
      pos = writeField(AUTHORITY, authorityBytes, out, pos);
    }
    for (int i = 0; i < fields.length; i += 2) {
      pos = writeField(fields[i], fields[i + 1], out, pos);
    }
    return out;
  }

  /**
   * Decodes {@code buf[offset, offset + length)}.
   *
   * @param request whether pseudo-fields are allowed (the first HEADERS of a request stream)
   * @param maxListSize the metadata limit: names plus values plus {@value #FIELD_OVERHEAD}
   *     bytes per field, as HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE counts it
   * @throws MetadataTooLargeException if the fields add up to more than {@code maxListSize}
   * @throws ProtocolException if the block is malformed
   */
  static Decoded decode(byte[] buf, int offset, int length, boolean request, long maxListSize)
      throws ProtocolException, MetadataTooLargeException {
    int limit = offset + length;
    int[] pos = {offset};
    String path = null;
    String authority = null;
    byte[][] fields = new byte[16][];
    int count = 0;
    long listSize = 0;
    boolean pseudoAllowed = request;
    while (pos[0] < limit) {
      byte[] name = readBytes(buf, pos, limit, "name");
      byte[] value = readBytes(buf, pos, limit, "value");
      listSize += name.length + value.length + FIELD_OVERHEAD;
      if (listSize > maxListSize) {
        throw new MetadataTooLargeException(
            "header block is larger than the limit of " + maxListSize + " bytes");
      }
      if (name.length > 0 && name[0] == ':') {
        if (!pseudoAllowed) {
          throw new ProtocolException("pseudo-field " + ascii(name) + " not allowed here");
        }
        if (Arrays.equals(name, PATH) && path == null) {
          path = new String(value, StandardCharsets.UTF_8);
        } else if (Arrays.equals(name, AUTHORITY) && authority == null) {
          authority = new String(value, StandardCharsets.UTF_8);
        } else {
          throw new ProtocolException("unexpected pseudo-field " + ascii(name));
        }
        continue;
      }
      pseudoAllowed = false;
      checkName(name);
      if (!endsWithBin(name)) {
        checkAsciiValue(name, value);
      }
      if (count + 2 > fields.length) {
        fields = Arrays.copyOf(fields, fields.length * 2);
      }
      fields[count++] = name;
      fields[count++] = value;
    }
    if (request && path == null) {
      throw new ProtocolException("request HEADERS without :path");
    }
    return new Decoded(path, authority, InternalMetadata.newMetadata(count / 2, fields));
  }

  private static int fieldSize(byte[] name, byte[] value) {
    return Varint.size(name.length) + name.length + Varint.size(value.length) + value.length;
  }

  private static int writeField(byte[] name, byte[] value, byte[] out, int pos) {
    pos = Varint.write(name.length, out, pos);
    System.arraycopy(name, 0, out, pos, name.length);
    pos += name.length;
    pos = Varint.write(value.length, out, pos);
    System.arraycopy(value, 0, out, pos, value.length);
    return pos + value.length;
  }

  private static byte[] readBytes(byte[] buf, int[] pos, int limit, String what)
      throws ProtocolException {
    long len = Varint.read(buf, pos, limit);
    if (len > limit - pos[0]) {
      throw new ProtocolException("field " + what + " runs past the end of the header block");
    }
    byte[] out = Arrays.copyOfRange(buf, pos[0], pos[0] + (int) len);
    pos[0] += (int) len;
    return out;
  }

  /** Names as {@link Metadata.Key} accepts them: {@code [0-9a-z_.-]+}. */
  private static void checkName(byte[] name) throws ProtocolException {
    if (name.length == 0) {
      throw new ProtocolException("empty field name");
    }
    for (byte b : name) {
      boolean ok = (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9')
          || b == '-' || b == '_' || b == '.';
      if (!ok) {
        throw new ProtocolException("invalid character 0x" + Integer.toHexString(b & 0xff)
            + " in field name " + ascii(name));
      }
    }
  }

  /** gRPC's ASCII-Value: printable ASCII, 0x20 to 0x7E. */
  private static void checkAsciiValue(byte[] name, byte[] value) throws ProtocolException {
    for (byte b : value) {
      if (b < 0x20 || b > 0x7e) {
        throw new ProtocolException("non-printable byte 0x" + Integer.toHexString(b & 0xff)
            + " in the value of " + ascii(name));
      }
    }
  }

  private static boolean endsWithBin(byte[] name) {
    int n = name.length;
    return n >= 4 && name[n - 4] == '-' && name[n - 3] == 'b' && name[n - 2] == 'i'
        && name[n - 1] == 'n';
  }

  private static String ascii(byte[] name) {
    return new String(name, 0, Math.min(name.length, 64), StandardCharsets.US_ASCII);
  }
}
