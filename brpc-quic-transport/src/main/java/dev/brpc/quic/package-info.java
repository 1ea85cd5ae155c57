/**
 * brpc's QUIC transport for grpc-java: {@link dev.brpc.quic.QuicServerBuilder} and
 * {@link dev.brpc.quic.QuicChannelBuilder} build ordinary grpc-java servers and channels whose
 * calls each ride one QUIC stream, in both directions over one connection per client.
 */
package dev.brpc.quic;
