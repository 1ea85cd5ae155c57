package dev.brpc.quic;

import java.time.Duration;
import java.time.Instant;

/**
 * What is known of one brpc QUIC connection at one moment: which engine carries it, since
 * when, and the engine's own counters. From {@link PeerConnection#info()}, and in brpc-core
 * from {@code ConnectedClient.info()} (the server's view of a client) and
 * {@code BrpcClient.connectionInfo()} (the client's view of its server).
 *
 * <p>A counter the engine does not keep is -1. kwik 0.10.9 counts nothing it receives (its
 * {@code Statistics} has only send-side counters): brpc counts the UDP payload bytes a kwik
 * client receives on its own socket, but a kwik server shares one socket among its
 * connections, so there {@code bytesReceived} is -1; {@code packetsReceived} is -1 on kwik
 * either way. The native engine (quiche) keeps every counter.
 *
 * @param engine the engine's name: {@code "kwik"} or {@code "native"}
 * @param connectedSince when the QUIC handshake completed
 * @param roundTripTime the smoothed round-trip time (RFC 9002, section 5.3); null if unknown
 * @param bytesSent UDP payload bytes sent, retransmissions included
 * @param bytesReceived UDP payload bytes received
 * @param packetsSent QUIC packets sent
 * @param packetsReceived QUIC packets received
 * @param packetsLost packets declared lost (and sent again, as far as they carried data)
 * @param openStreams the calls open on the connection now, both directions
 */
public record ConnectionInfo(String engine, Instant connectedSince, Duration roundTripTime,
    long bytesSent, long bytesReceived, long packetsSent, long packetsReceived,
    long packetsLost, int openStreams) {}
