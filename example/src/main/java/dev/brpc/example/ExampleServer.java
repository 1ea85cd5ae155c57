package dev.brpc.example;

import dev.brpc.BrpcServer;
import dev.brpc.ClientListener;
import dev.brpc.ConnectedClient;
import dev.brpc.example.proto.NameRequest;
import dev.brpc.example.proto.NamerGrpc;
import dev.brpc.quic.SelfSignedCertificate;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * The example's server: serves Greeter, and every few seconds calls every connected client
 * through the registry (a "roll call"), outside of any request.
 *
 * <pre>
 * java dev.brpc.example.ExampleServer [--host 0.0.0.0] [--port 8443]
 *     [--cert cert.pem --key key.pem] [--cert-dir demo-certs] [--roll-call-seconds 5]
 * </pre>
 *
 * <p>Without {@code --cert} and {@code --key} it generates a development certificate for
 * {@code localhost} and writes it to {@code --cert-dir}, where {@link ExampleClient} trusts it.
 *
 * <p>Thread-safe.
 */
public final class ExampleServer implements AutoCloseable {
  private static final String USAGE = "ExampleServer [--host 0.0.0.0] [--port 8443]"
      + " [--cert cert.pem --key key.pem] [--cert-dir demo-certs] [--roll-call-seconds 5]";

  private final BrpcServer<NamerGrpc.NamerBlockingStub> server;
  private final ScheduledExecutorService scheduler;
  private final PrintStream out;
  /** One permit per client answer in a roll call: lets the demo and tests wait for one. */
  private final Semaphore rollCallAnswers = new Semaphore(0);

  private ExampleServer(BrpcServer<NamerGrpc.NamerBlockingStub> server, Duration rollCall,
      PrintStream out) {
    this.server = server;
    this.out = out;
    this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "example-roll-call");
      t.setDaemon(true);
      return t;
    });
    scheduler.scheduleWithFixedDelay(this::rollCall, rollCall.toMillis(), rollCall.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  public static void main(String[] args) throws Exception {
    Options o = new Options(args, Set.of("--host", "--port", "--cert", "--key", "--cert-dir",
        "--roll-call-seconds"), USAGE);
    String cert = o.get("--cert", null);
    String key = o.get("--key", null);
    if ((cert == null) != (key == null)) {
      throw new IllegalArgumentException("--cert and --key go together\nusage: " + USAGE);
    }
    ExampleServer server = start(
        new InetSocketAddress(o.get("--host", "0.0.0.0"), o.getInt("--port", 8443)),
        cert == null ? null : new File(cert), key == null ? null : new File(key),
        Path.of(o.get("--cert-dir", "demo-certs")),
        Duration.ofSeconds(o.getInt("--roll-call-seconds", 5)), System.out);
    Runtime.getRuntime().addShutdownHook(new Thread(server::close));
    server.server.awaitTermination();
  }

  /**
   * Starts a server on {@code address}, with the PEM certificate and key given, or with a
   * development certificate written to {@code certDir} when they are null.
   */
  static ExampleServer start(InetSocketAddress address, File cert, File key, Path certDir,
      Duration rollCall, PrintStream out) throws IOException {
    // [START server]
    BrpcServer.Builder<NamerGrpc.NamerBlockingStub> builder =
        BrpcServer.forAddress(address, NamerGrpc::newBlockingStub)
            .addService(server -> new GreeterService(server, out))
            .addListener(new ClientListener<>() {
              @Override
              public void connected(ConnectedClient<NamerGrpc.NamerBlockingStub> client) {
                out.println("[server] client " + client.id() + " connected from "
                    + client.remoteAddress());
              }

              @Override
              public void disconnected(ConnectedClient<NamerGrpc.NamerBlockingStub> client,
                  Status status) {
                out.println("[server] client " + client.id() + " disconnected");
              }
            });
    if (cert != null) {
      builder.useTransportSecurity(cert, key);
    } else {
      // Development only: clients must be told to trust this certificate.
      SelfSignedCertificate development = SelfSignedCertificate.generate("localhost");
      development.writeTo(certDir);
      builder.useTransportSecurity(development);
      out.println("[server] wrote a development certificate to "
          + certDir.resolve("cert.pem") + " for clients to trust");
    }
    BrpcServer<NamerGrpc.NamerBlockingStub> server = builder.build().start();
    // [END server]
    out.println("[server] listening on port " + server.port());
    return new ExampleServer(server, rollCall, out);
  }

  // [START rollcall]
  /** Calls every connected client, from a scheduled task: no request is being served. */
  private void rollCall() {
    for (ConnectedClient<NamerGrpc.NamerBlockingStub> client : server.clients()) {
      try {
        String name = client.stub().withDeadlineAfter(5, TimeUnit.SECONDS)
            .name(NameRequest.getDefaultInstance()).getName();
        out.println("[server] roll call: client " + client.id() + " is " + name);
        rollCallAnswers.release();
      } catch (StatusRuntimeException e) {
        out.println("[server] roll call: client " + client.id() + " did not answer: "
            + e.getStatus());
      }
    }
  }
  // [END rollcall]

  int port() {
    return server.port();
  }

  /** Waits until some client has answered a roll call. */
  boolean awaitRollCallAnswer(long timeout, TimeUnit unit) throws InterruptedException {
    return rollCallAnswers.tryAcquire(timeout, unit);
  }

  /**
   * Forgets the roll calls answered so far, so that {@link #awaitRollCallAnswer} waits for the
   * next one (on a busy machine one can come while the demo's requests are still running).
   */
  void forgetRollCallAnswers() {
    rollCallAnswers.drainPermits();
  }

  /** Stops the roll call and the server; calls in flight get a few seconds to finish. */
  @Override
  public void close() {
    scheduler.shutdownNow();
    server.shutdown();
    try {
      if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
        server.shutdownNow();
        server.awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      server.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}
