package dev.brpc.quic.engine;

/**
 * What an engine measures of one connection, at one moment. A field the engine does not know
 * is -1.
 *
 * @param smoothedRttNanos smoothed round-trip time (RFC 9002, section 5.3)
 * @param bytesSent UDP payload bytes sent, retransmissions included
 * @param bytesReceived UDP payload bytes received
 * @param packetsSent QUIC packets sent
 * @param packetsReceived QUIC packets received
 * @param packetsLost packets declared lost
 */
public record ConnectionStats(long smoothedRttNanos, long bytesSent, long bytesReceived,
    long packetsSent, long packetsReceived, long packetsLost) {
  /** Nothing known. */
  public static final ConnectionStats UNKNOWN = new ConnectionStats(-1, -1, -1, -1, -1, -1);
}
