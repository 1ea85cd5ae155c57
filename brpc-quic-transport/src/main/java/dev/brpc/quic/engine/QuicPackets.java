package dev.brpc.quic.engine;

/**
 * Reading QUIC packet headers, for engines that must look at datagrams (RFC 9000, section
 * 17). See {@link #handshakePacketLength} for why.
 *
 * <p>Stateless; thread-safe.
 */
public final class QuicPackets {
  private static final int QUIC_V1 = 0x00000001;
  private static final int QUIC_V2 = 0x6b3343cf;

  private QuicPackets() {}

  /**
   * The length of the QUIC packet that starts {@code data[offset]}, if it is a Handshake packet
   * (long header, QUIC version 1 or 2) whose header is well formed; -1 otherwise. The fields
   * read are not header-protected (RFC 9001, section 5.4.1 masks only the low bits of the first
   * byte and the packet number).
   *
   * <p>Why: a dialer should send a Handshake packet that it coalesced with later packets as a
   * datagram of its own (PROTOCOL.md, section 1). A kwik 0.10.9 server discards its handshake
   * keys as soon as it has the dialer's Finished, and then drops the whole datagram, 1-RTT
   * packets behind the Handshake packet included; the connection's first request then waits
   * for a retransmission. Any dialing engine splits such datagrams.
   *
   * @param data the datagram's bytes
   * @param offset where the packet starts in {@code data}
   * @param length how many bytes of {@code data} from {@code offset} belong to the datagram
   * @return the packet's length in bytes, or -1 if it is not a well-formed Handshake packet
   */
  public static int handshakePacketLength(byte[] data, int offset, int length) {
    int end = offset + length;
    if (length < 7 || (data[offset] & 0xc0) != 0xc0) {
      return -1; // a short header, or too short to be a long header
    }
    int type = (data[offset] & 0x30) >> 4;
    int version = version(data, offset);
    boolean handshake = version == QUIC_V1 ? type == 2 : version == QUIC_V2 && type == 3;
    if (!handshake) {
      return -1;
    }
    int pos = offset + 5;
    for (int cid = 0; cid < 2; cid++) { // destination, then source connection id
      int cidLength = data[pos] & 0xff;
      if (cidLength > 20) {
        return -1;
      }
      pos += 1 + cidLength;
      if (pos >= end) {
        return -1;
      }
    }
    int varintSize = 1 << ((data[pos] & 0xff) >> 6);
    if (pos + varintSize > end) {
      return -1;
    }
    long payloadLength = data[pos] & 0x3f;
    for (int i = 1; i < varintSize; i++) {
      payloadLength = (payloadLength << 8) | (data[pos + i] & 0xff);
    }
    long packetEnd = pos + varintSize + payloadLength;
    return packetEnd > end ? -1 : (int) (packetEnd - offset);
  }

  /**
   * Whether the datagram {@code data[offset..offset+length)} starts with a long-header packet of
   * QUIC version 1 or 2 whose destination or source connection id is declared longer than 20
   * bytes, or runs past the datagram. RFC 9000 (section 17.2) requires such a packet to be
   * dropped; kwik 0.10.9 instead reads a Retry packet's lengths as signed bytes, and a length
   * byte of 0x80 or more throws {@code NegativeArraySizeException}, which aborts the dial
   * (fixed upstream in f0fb7b6b). Both CID lengths are in the clear (RFC 9001, section 5.4).
   *
   * @param data the datagram's bytes
   * @param offset where the datagram starts in {@code data}
   * @param length the datagram's length in bytes
   * @return true if the packet must be dropped for its connection id lengths
   */
  public static boolean hasInvalidConnectionIdLength(byte[] data, int offset, int length) {
    if (length < 6 || (data[offset] & 0x80) == 0) {
      return false; // a short header (or less than a long header's first six bytes)
    }
    int version = version(data, offset);
    if (version != QUIC_V1 && version != QUIC_V2) {
      return false; // a version negotiation packet, or a version we do not speak
    }
    int end = offset + length;
    int pos = offset + 5;
    for (int cid = 0; cid < 2; cid++) { // destination, then source connection id
      if (pos >= end) {
        return true;
      }
      int cidLength = data[pos] & 0xff;
      if (cidLength > 20) {
        return true;
      }
      pos += 1 + cidLength;
    }
    return pos > end;
  }

  /**
   * The versions a Version Negotiation packet (RFC 9000, section 17.2.1: a long header with
   * version 0) lists; null if the datagram is not one, or is malformed.
   *
   * @param data the datagram's bytes
   * @param offset where the datagram starts in {@code data}
   * @param length the datagram's length in bytes
   * @return the versions the server supports, or null
   */
  public static int[] versionNegotiation(byte[] data, int offset, int length) {
    if (length < 7 || (data[offset] & 0x80) == 0 || version(data, offset) != 0) {
      return null;
    }
    int end = offset + length;
    int pos = offset + 5;
    for (int cid = 0; cid < 2; cid++) {
      if (pos >= end) {
        return null;
      }
      pos += 1 + (data[pos] & 0xff);
    }
    if (pos >= end || (end - pos) % 4 != 0) {
      return null;
    }
    int[] versions = new int[(end - pos) / 4];
    for (int i = 0; i < versions.length; i++) {
      versions[i] = readInt(data, pos + 4 * i);
    }
    return versions;
  }

  /**
   * How a version reads for people: {@code v1}, {@code v2}, or its hex value.
   *
   * @param version a QUIC version number
   * @return its name
   */
  public static String versionName(int version) {
    return version == QUIC_V1 ? "v1" : version == QUIC_V2 ? "v2"
        : String.format("0x%08x", version);
  }

  /**
   * The version field of a long-header packet (its bytes 1 to 4); the caller has checked that
   * {@code data} holds at least 5 bytes from {@code offset} and that the header is long.
   *
   * @param data the datagram's bytes
   * @param offset where the packet starts in {@code data}
   * @return the QUIC version (0 for Version Negotiation)
   */
  public static int version(byte[] data, int offset) {
    return readInt(data, offset + 1);
  }

  private static int readInt(byte[] data, int pos) {
    return ((data[pos] & 0xff) << 24) | ((data[pos + 1] & 0xff) << 16)
        | ((data[pos + 2] & 0xff) << 8) | (data[pos + 3] & 0xff);
  }
}
