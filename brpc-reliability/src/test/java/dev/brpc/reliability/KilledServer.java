package dev.brpc.reliability;

import dev.brpc.BrpcServer;
import dev.brpc.reliability.proto.ProbeGrpc;
import java.io.File;
import java.net.InetSocketAddress;

/**
 * A brpc server in a JVM of its own, for {@link KilledPeerTest} to kill with SIGKILL and start
 * again: it listens with the default settings on loopback port {@code args[0]} (0 for any),
 * with the PEM certificate and key in {@code args[1]} and {@code args[2]}, serves
 * {@link ProbeService}, prints {@code listening <port>}, and runs until killed (or until its
 * stdin closes).
 *
 * <p>The engine is the test JVM's: the {@code brpc.quic.engine} system property is passed on.
 */
final class KilledServer {
  private KilledServer() {}

  public static void main(String[] args) throws Exception {
    BrpcServer<ProbeGrpc.ProbeBlockingStub> server = BrpcServer.forAddress(
            new InetSocketAddress("127.0.0.1", Integer.parseInt(args[0])),
            ProbeGrpc::newBlockingStub)
        .useTransportSecurity(new File(args[1]), new File(args[2]))
        .addService(new ProbeService())
        .build().start();
    System.out.println("listening " + server.port());
    System.out.flush();
    while (System.in.read() != -1) {
      // until killed, or the test JVM (its stdin's other end) is gone
    }
    server.shutdownNow();
  }
}
