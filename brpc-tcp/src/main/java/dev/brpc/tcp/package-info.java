/**
 * The {@code "tcp"} engine: brpc's protocol over TLS/TCP (HTTP/2 through grpc-java's Netty
 * transport), behind the same engine seam as the QUIC engines ({@code dev.brpc.quic.engine}).
 * Wire format: PROTOCOL.md, section 8.
 */
package dev.brpc.tcp;
