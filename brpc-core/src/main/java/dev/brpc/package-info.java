/**
 * brpc: a gRPC server that calls back into the clients connected to it, over one QUIC
 * connection per client.
 *
 * <p>{@link dev.brpc.BrpcServer} serves the calls clients make and hands handlers a stub for
 * the calling client ({@link dev.brpc.BrpcServer#clientFromContext()}), built by a
 * {@link dev.brpc.ClientServiceBuilder}; it also keeps a registry of connected clients
 * ({@link dev.brpc.ConnectedClient}) with round-robin {@link dev.brpc.ClientsChannel}s over
 * them. With a {@link dev.brpc.Director}, the server forwards calls for services it does not
 * implement to the client (or channel) the director picks ({@link dev.brpc.Route}), as raw
 * bytes: a gateway to its clients. {@link dev.brpc.BrpcClient} connects, serves its own services to the server, and
 * reconnects when the connection drops.
 *
 * <p>Package-private classes here ({@code ClientRegistry}) are the implementation; the
 * transport underneath is {@code dev.brpc.quic} (module brpc-quic-transport).
 */
package dev.brpc;
