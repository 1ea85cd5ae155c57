/**
 * The engine seam: what brpc's gRPC transport needs from a QUIC implementation, and nothing
 * else. <b>For engine implementations; no compatibility promise.</b> No type here names grpc
 * or an engine, and the transport above ({@code dev.brpc.quic.internal}) talks to an engine
 * only through these interfaces, so a new engine is an adapter, not a rewrite.
 *
 * <h2>Model</h2>
 *
 * <ul>
 *   <li>{@link QuicEngine} listens ({@link QuicEngine#listen}) and dials ({@link
 *       QuicEngine#dial}); engines are found through {@link QuicEngineProvider} and {@link
 *       java.util.ServiceLoader}.
 *   <li>{@link EngineConnection}: one QUIC connection whose TLS handshake is done. It opens
 *       streams without blocking (queued behind the peer's stream limit), hands the peer's
 *       streams to a {@link ConnectionHandler}, closes with an application error code, and
 *       reports once, typed, why it closed ({@link CloseInfo}).
 *   <li>{@link EngineStream}: one QUIC stream. Reading is pull-on-notify: the engine calls
 *       {@link StreamHandler#readable} whenever something arrived (bytes, the FIN, a reset, the
 *       connection's end) and the handler reads what is there with {@link
 *       EngineStream#read}, which never blocks. Bytes count against QUIC flow control until
 *       they are read, so a handler that stops reading stops the peer. Writing is bounded:
 *       {@link EngineStream#writableBytes} says how much {@link EngineStream#write} takes now,
 *       and {@link EngineStream#requestWritable} asks for a {@link StreamHandler#writable} call
 *       when there is room again. No engine queues writes without bound and no call here
 *       blocks.
 *   <li>Stopping: {@link EngineStream#stopSending} (STOP_SENDING) ends the reading side; the
 *       engine itself discards what still arrives and keeps the connection's flow-control
 *       credit whole. {@link EngineStream#reset} (RESET_STREAM) ends the sending side.
 * </ul>
 *
 * <h2>Threads</h2>
 *
 * Every callback may run on an engine thread (kwik's receiver, a Netty event loop) or on the
 * thread that made the call that caused it, and must never block. Callbacks of one stream
 * are not serialized by the engine: the transport's reader serializes itself.
 */
package dev.brpc.quic.engine;
