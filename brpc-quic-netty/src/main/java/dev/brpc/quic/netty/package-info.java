/**
 * The native QUIC engine: Netty's QUIC codec (quiche and BoringSSL, through JNI) behind
 * brpc's engine seam ({@link dev.brpc.quic.engine}). <b>Internal, no compatibility
 * promise</b>: users pick it by putting this module on the class path, or by name
 * ({@code engine("native")} on the builders, or {@code -Dbrpc.quic.engine=native}).
 *
 * <p>Map: {@code NettyEngine} (the event loops, listening, dialing with shared client codecs);
 * {@code NettyListener} (one UDP channel with the server codec); {@code NettyConnection} (one
 * QUIC channel: streams queued behind the peer's limit, why it closed); {@code NettyStream}
 * (bounded reads and writes over a stream channel); {@code NettyTls} (contexts from brpc's TLS
 * options); {@code HandshakeSplitter} (for kwik servers).
 */
package dev.brpc.quic.netty;
