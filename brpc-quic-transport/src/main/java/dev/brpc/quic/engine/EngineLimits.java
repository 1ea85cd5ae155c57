package dev.brpc.quic.engine;

/**
 * Transport parameters both ends of a connection set the same way.
 *
 * @param idleTimeoutNanos QUIC's max_idle_timeout
 * @param streamReceiveWindow initial flow-control credit per stream, both directions
 * @param connectionReceiveWindow initial flow-control credit for the whole connection
 * @param maxPeerBidiStreams how many bidirectional streams the peer may have open at once
 * @param maxPeerUniStreams how many unidirectional streams the peer may have open at once
 */
public record EngineLimits(long idleTimeoutNanos, long streamReceiveWindow,
    long connectionReceiveWindow, int maxPeerBidiStreams, int maxPeerUniStreams) {}
