/**
 * Implementation of the brpc QUIC transport: <b>internal, no compatibility promise</b>. Every
 * import of grpc-java's {@code io.grpc.internal} and of kwik lives here.
 *
 * <p>Map: {@code Connection} (one kwik connection: control streams, GOAWAY, stream accounting);
 * {@code QuicClientTransport}/{@code QuicClientStream} (the caller role);
 * {@code QuicServerTransport}/{@code QuicServerStream} (the callee role); {@code StreamWriter}
 * (inline kwik writes, blocking ones on the shared io pool) and {@code StreamReader} (parses
 * frames where they arrive, hooked into kwik by {@code KwikReceiveHook}); {@code ListeningServer}
 * (kwik's ServerConnector) and {@code CallbackServer} (serves calls on dialed connections);
 * {@code Wire}, {@code Varint}, {@code HeaderBlock} (PROTOCOL.md).
 */
package dev.brpc.quic.internal;
