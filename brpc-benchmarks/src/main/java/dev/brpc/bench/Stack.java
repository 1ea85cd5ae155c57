package dev.brpc.bench;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeoutException;

/**
 * One protocol stack under test: how to serve the benchmark service in the server JVM and how
 * to dial it from the client JVM. Every workload is written once, against {@link Caller}.
 *
 * <ul>
 *   <li>{@code netty}: grpc-java over Netty with TLS 1.3 (the comparison target);
 *   <li>{@code brpc}: {@code BrpcServer} and {@code BrpcClient} over QUIC on the kwik engine;
 *       its server also calls the client back ({@link Listening#callbacks()});
 *   <li>{@code brpc-native}: the same on the native engine (Netty's QUIC codec, quiche);
 *   <li>{@code kwik}: raw kwik streams, one per request, no gRPC (the transport's floor).
 * </ul>
 *
 * <p>Implementations are thread-safe.
 */
interface Stack {
  /** The stack called {@code name}, with the certificate files in {@code certDir}. */
  static Stack named(String name, Path certDir) {
    Certificates certs = new Certificates(certDir);
    switch (name) {
      case "netty":
        return new NettyStack(certs);
      case "brpc":
        return new BrpcStack(certs, "kwik");
      case "brpc-native":
        return new BrpcStack(certs, "native");
      case "kwik":
        return new KwikStack(certs);
      default:
        throw new IllegalArgumentException("unknown stack '" + name
            + "' (expected netty, brpc, brpc-native or kwik)");
    }
  }

  /** Starts a server on 127.0.0.1 and an ephemeral port. In the server JVM. */
  Listening serve() throws Exception;

  /** Dials the server at localhost:{@code port} and returns once connected. In the client JVM. */
  Caller dial(int port) throws Exception;

  /**
   * Connects an agent and a caller to the server at localhost:{@code port}; the caller's calls
   * are for a service the server does not implement, which its director forwards to the agent
   * (brpc only: {@code BrpcServer.Builder.director}). In the client JVM, which thus holds both
   * ends of the forwarded call.
   */
  default Caller forwarded(int port) throws Exception {
    throw new UnsupportedOperationException("only brpc forwards calls to its clients");
  }

  /** A running server. Thread-safe. */
  interface Listening {
    int port();

    /** Waits until {@code count} clients are connected. */
    void awaitClients(int count, Duration timeout) throws InterruptedException, TimeoutException;

    /** Calls into the first connected client, over its own connection (brpc only). */
    default Caller callbacks() {
      throw new UnsupportedOperationException("only brpc calls its clients back");
    }
  }

  /**
   * Makes calls over one connection. Thread-safe: the throughput workload calls it from many
   * threads at once, each call blocking until its response is complete.
   */
  interface Caller extends AutoCloseable {
    /** One unary call with a 16-byte request and a 16-byte response. */
    void unary() throws Exception;

    /** One server-streaming call of {@code count} messages of {@code size} bytes; bytes read. */
    long stream(int count, int size) throws Exception;

    /**
     * One call whose server sends {@code count} times {@code size} raw bytes on a side channel
     * (brpc only); bytes read.
     */
    default long sideChannel(int count, int size) throws Exception {
      throw new UnsupportedOperationException("only brpc has side channels");
    }

    /** Closes the connection. */
    @Override
    void close();
  }
}
