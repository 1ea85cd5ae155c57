package dev.brpc.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.ListenableFuture;
import dev.brpc.BrpcClient;
import dev.brpc.ClientListener;
import dev.brpc.ConnectedClient;
import dev.brpc.reliability.proto.Msg;
import dev.brpc.reliability.proto.ProbeGrpc;
import io.grpc.Status;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A client (or a server) in another JVM is killed with SIGKILL: over UDP nobody tells the
 * other side, so the transport's own probes must (issue 20 item 3). Server and client run with the default
 * settings: no keepalive, the 30 s QUIC idle timeout, the 4 s idle probe and the 5 s stall
 * timeout. Runs on each engine (the child JVM gets the test JVM's {@code brpc.quic.engine}).
 */
@ExtendWith(dev.brpc.fixtures.ThreadDumpOnFailure.class)
class KilledPeerTest {
  /**
   * The design bounds (README, "A dead peer"): idle, 4 s of silence, a PING, 5 s for its
   * answer, each acted on within a watchdog period (1 s): 11 s; with calls open, 5 s + 5 s and
   * two periods of 1.25 s: 12.5 s. These allow a busy machine's late timers on top.
   */
  private static final long IDLE_BOUND_MS = 16_000;
  private static final long IN_FLIGHT_BOUND_MS = 18_000;

  private final LinkedBlockingQueue<Status> left = new LinkedBlockingQueue<>();
  private Net net;
  private Process child;
  private final Semaphore childHanging = new Semaphore(0);

  @AfterEach
  void tearDown() throws Exception {
    if (child != null) {
      child.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
    }
    if (net != null) {
      net.close();
    }
  }

  private void startServer() throws Exception {
    net = new Net(81, b -> b.addListener(new ClientListener<>() {
      @Override
      public void disconnected(ConnectedClient<ProbeGrpc.ProbeBlockingStub> client,
          Status status) {
        left.add(status);
      }
    }));
  }

  /** Starts {@link KilledPeer} against the server; returns its id once it is registered. */
  private UUID clientInAnotherJvm() throws Exception {
    UUID u = UUID.fromString(startChild(KilledPeer.class, "connected ",
        String.valueOf(net.server.port()), pem(Net.CERT.certificatePem()).toString()));
    assertEquals(u, net.connected.poll(30, TimeUnit.SECONDS));
    return u;
  }

  /** Starts {@link KilledServer} on {@code port} (0: any); returns the port it listens on. */
  private int serverInAnotherJvm(int port) throws Exception {
    return Integer.parseInt(startChild(KilledServer.class, "listening ", String.valueOf(port),
        pem(Net.CERT.certificatePem()).toString(), pem(Net.CERT.privateKeyPem()).toString()));
  }

  private static Path pem(String text) throws java.io.IOException {
    Path pem = Files.createTempFile("brpc-killed-peer", ".pem");
    pem.toFile().deleteOnExit();
    Files.writeString(pem, text);
    return pem;
  }

  /**
   * Starts {@code main} in a JVM of its own, with this JVM's class path and engine, as
   * {@link #child}; returns what follows {@code prefix} on the first line that starts with it.
   * Its "hanging" lines release {@link #childHanging}.
   */
  private String startChild(Class<?> main, String prefix, String... args) throws Exception {
    String java = ProcessHandle.current().info().command()
        .orElse(System.getProperty("java.home") + "/bin/java");
    List<String> command = new ArrayList<>(List.of(java, "-cp",
        System.getProperty("java.class.path"),
        "-Dbrpc.quic.engine=" + System.getProperty("brpc.quic.engine", "kwik"),
        main.getName()));
    command.addAll(List.of(args));
    Process started = new ProcessBuilder(command).redirectErrorStream(true).start();
    child = started;
    CompletableFuture<String> first = new CompletableFuture<>();
    StringBuilder output = new StringBuilder();
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(
          new InputStreamReader(started.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line; (line = r.readLine()) != null; ) {
          if (line.startsWith(prefix)) {
            first.complete(line.substring(prefix.length()));
          } else if (line.equals("hanging")) {
            childHanging.release();
          } else {
            output.append(line).append('\n');
          }
        }
      } catch (Exception e) {
        // the child is gone
      }
      first.completeExceptionally(new AssertionError(main.getSimpleName()
          + "'s JVM ended before it was ready:\n" + output));
    }, "killed-peer-output");
    reader.setDaemon(true);
    reader.start();
    return first.get(60, TimeUnit.SECONDS);
  }

  /**
   * The server's JVM is killed with SIGKILL: the idle client notices within the same bound as
   * a server notices a killed client, reports it to its listener, and once a server is started
   * again on the same port, reconnects to it by itself with a new id.
   */
  @Test
  void aServerKilled_isNoticedByItsIdleClientWithinAbout10Seconds_andARestartIsRejoined()
      throws Exception {
    int port = serverInAnotherJvm(0);
    LinkedBlockingQueue<Status> lost = new LinkedBlockingQueue<>();
    LinkedBlockingQueue<UUID> joined = new LinkedBlockingQueue<>();
    BrpcClient client = BrpcClient.forAddress("localhost", port)
        .trustCertificate(Net.CERT.certificate())
        .addService(new ProbeService())
        .addListener(new BrpcClient.Listener() {
          @Override
          public void connected(UUID id) {
            joined.add(id);
          }

          @Override
          public void disconnected(UUID id, Status status) {
            lost.add(status);
          }
        })
        .build();
    try {
      UUID first = client.connect(30, TimeUnit.SECONDS);
      assertEquals(first, joined.poll(30, TimeUnit.SECONDS));
      long t0 = kill();

      Status status = lost.poll(60, TimeUnit.SECONDS);
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      assertEquals(Status.Code.UNAVAILABLE, status.getCode(), String.valueOf(status));
      assertTrue(status.getDescription().contains("peer not answering"), status.toString());
      assertTrue(ms <= IDLE_BOUND_MS, "the client noticed its killed server after " + ms + " ms");

      serverInAnotherJvm(port);
      long t1 = System.nanoTime();
      UUID second = joined.poll(60, TimeUnit.SECONDS);
      long rejoinMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t1);
      assertTrue(second != null && !second.equals(first), "rejoined as " + second);
      Profile.record("server killed (SIGKILL), idle client, default settings",
          "the client noticed after " + ms + " ms; rejoined a server restarted on the same port "
          + rejoinMs + " ms after it started");
    } finally {
      client.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  /** SIGKILL, as {@code kill -9}: no close, no CONNECTION_CLOSE, nothing. */
  private long kill() throws InterruptedException {
    long t0 = System.nanoTime();
    child.destroyForcibly();
    assertTrue(child.waitFor(30, TimeUnit.SECONDS), "the client JVM did not die");
    return t0;
  }

  @Test
  void anIdleClientKilled_leavesTheRegistryWithinAbout10Seconds_withDefaultSettings()
      throws Exception {
    startServer();
    UUID id = clientInAnotherJvm();
    long t0 = kill();

    assertEquals(id, net.disconnected.poll(60, TimeUnit.SECONDS), "the client did not leave");
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    Status status = left.poll(10, TimeUnit.SECONDS);
    assertEquals(Status.Code.UNAVAILABLE, status.getCode(), status.toString());
    assertTrue(status.getDescription().contains("peer not answering"), status.toString());
    assertTrue(net.server.client(id).isEmpty());
    assertTrue(ms <= IDLE_BOUND_MS, "the killed client left the registry after " + ms + " ms");
    Profile.record("idle client killed (SIGKILL), default settings",
        "left the registry, disconnect listener fired, after " + ms + " ms");
  }

  @Test
  void aClientKilledUnderCallbacks_failsThemUnavailable_notAtTheirDeadline() throws Exception {
    startServer();
    UUID id = clientInAnotherJvm();
    ConnectedClient<ProbeGrpc.ProbeBlockingStub> client = net.server.client(id).orElseThrow();
    List<ListenableFuture<Msg>> calls = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      calls.add(Net.probe(client.channel()).withDeadlineAfter(120, TimeUnit.SECONDS)
          .hang(Msg.getDefaultInstance()));
    }
    assertTrue(childHanging.tryAcquire(10, 30, TimeUnit.SECONDS), "callbacks not in the client");
    long t0 = kill();

    for (ListenableFuture<Msg> call : calls) {
      ExecutionException e = assertThrows(ExecutionException.class,
          () -> call.get(60, TimeUnit.SECONDS));
      Status s = Status.fromThrowable(e.getCause());
      assertEquals(Status.Code.UNAVAILABLE, s.getCode(), s.toString());
      assertTrue(s.getDescription().contains("stalled"), s.toString());
    }
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    assertTrue(ms <= IN_FLIGHT_BOUND_MS, "the last callback failed after " + ms + " ms");
    assertEquals(id, net.disconnected.poll(30, TimeUnit.SECONDS));
    Profile.record("client killed (SIGKILL) under 10 callbacks, default settings",
        "10/10 failed UNAVAILABLE (deadline 120 s) after " + ms + " ms");
  }
}
