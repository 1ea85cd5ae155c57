/**
 * Implementation of the brpc QUIC transport: <b>internal, no compatibility promise</b>. Every
 * import of grpc-java's {@code io.grpc.internal} lives here. No class in this package imports
 * a QUIC engine: it speaks only the engine seam, {@link dev.brpc.quic.engine}; the kwik adapter
 * is in {@code dev.brpc.quic.internal.kwik}, and {@code Engines} picks an engine.
 *
 * <p>Map: {@code Connection} (one engine connection: control streams, GOAWAY, stream
 * accounting); {@code QuicClientTransport}/{@code QuicClientStream} (the caller role);
 * {@code QuicServerTransport}/{@code QuicServerStream} (the callee role); {@code StreamWriter}
 * (writes as far as the stream's credit allows, resumes on the engine's writable event) and
 * {@code StreamReader} (parses frames on the engine's readable event, where they arrive),
 * both driven through {@code StreamEvents}; {@code ListeningServer} (an engine listener) and
 * {@code CallbackServer} (serves calls on dialed connections); {@code SideChannelSlot} and
 * {@code SideChannelStream} (a call's side channels, PROTOCOL.md section 7); {@code Wire},
 * {@code Varint},
 * {@code HeaderBlock} (PROTOCOL.md).
 */
package dev.brpc.quic.internal;
