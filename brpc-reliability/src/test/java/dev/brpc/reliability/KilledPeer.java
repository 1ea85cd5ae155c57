package dev.brpc.reliability;

import dev.brpc.BrpcClient;
import java.io.File;
import java.util.concurrent.TimeUnit;

/**
 * A brpc client in a JVM of its own, for {@link KilledPeerTest} to kill with SIGKILL: it
 * connects with the default settings to the server on loopback port {@code args[0]}, trusting
 * the PEM certificate in {@code args[1]}, serves {@link ProbeService}, prints {@code connected
 * <id>} once connected and {@code hanging} for each {@code Hang} call in its handler, and runs
 * until killed (or until its stdin closes, when the test JVM ends without killing it).
 *
 * <p>The engine is the test JVM's: the {@code brpc.quic.engine} system property is passed on.
 */
final class KilledPeer {
  private KilledPeer() {}

  public static void main(String[] args) throws Exception {
    ProbeService probe = new ProbeService();
    BrpcClient client = BrpcClient.forAddress("localhost", Integer.parseInt(args[0]))
        .trustCertificates(new File(args[1]))
        .addService(probe)
        .build();
    client.connect(30, TimeUnit.SECONDS);
    System.out.println("connected " + client.id());
    System.out.flush();
    Thread reporter = new Thread(() -> {
      try {
        while (true) {
          probe.hanging.acquire();
          System.out.println("hanging");
          System.out.flush();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "killed-peer-reporter");
    reporter.setDaemon(true);
    reporter.start();
    while (System.in.read() != -1) {
      // until killed, or the test JVM (its stdin's other end) is gone
    }
    client.shutdownNow();
  }
}
