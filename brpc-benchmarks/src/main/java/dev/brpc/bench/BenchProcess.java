package dev.brpc.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The main class of the server and client JVMs that {@link Benchmark} starts (as
 * {@link ChildJvm}s). Usage: {@code BenchProcess server|client <stack> <certDir>}.
 *
 * <p>A server starts the stack's server and answers {@code ok port=N}; a client answers
 * {@code ok} and waits for {@code dial port=N}. Both then run one command per line from stdin
 * and answer one line on stdout, prefixed {@value #PREFIX} ({@value #ERROR} for a failure);
 * everything else they print (logs) goes to stderr. Commands: {@code dial}, {@code stats},
 * {@code dial-forwarded}, {@code footprint}, {@code latency}, {@code throughput}, {@code stream}, {@code side-channel}, {@code setup},
 * {@code open-idle}, {@code await-clients}, {@code exit}. The workload commands run in the
 * client against its connection, or in a brpc server against its first client (callbacks). The JVM halts on {@code exit}, when stdin closes, or when
 * its parent process dies, so a failed or killed benchmark leaves nothing behind.
 *
 * <p>Commands run one at a time on the main thread.
 */
public final class BenchProcess {
  static final String PREFIX = "@bench ";
  static final String ERROR = "@bench! ";
  private static final Logger log = Logger.getLogger(BenchProcess.class.getName());

  private final PrintStream out;
  private final Stack stack;
  private Stack.Listening server;
  private int port;
  private Stack.Caller caller; // client: the connection the workloads use
  private Stack.Caller forwarded; // client: calls forwarded by the server to an agent (brpc)
  private final List<Stack.Caller> idle = new ArrayList<>();

  private BenchProcess(PrintStream out, Stack stack) {
    this.out = out;
    this.stack = stack;
  }

  public static void main(String[] args) throws Exception {
    // The protocol owns stdout; nothing else may write to it.
    PrintStream protocol = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    System.setOut(System.err);
    ProcessHandle.current().parent().ifPresent(
        parent -> parent.onExit().thenRun(() -> Runtime.getRuntime().halt(3)));
    if (args.length != 3 || !(args[0].equals("server") || args[0].equals("client"))) {
      protocol.println(ERROR + "usage: BenchProcess server|client <stack> <certDir>");
      Runtime.getRuntime().halt(2);
    }
    BenchProcess p = new BenchProcess(protocol, Stack.named(args[1], Path.of(args[2])));
    try {
      Fields hello = new Fields("ok");
      if (args[0].equals("server")) {
        p.server = p.stack.serve();
        hello.put("port", p.server.port());
      }
      p.answer(hello);
      p.serveCommands();
    } catch (Throwable t) {
      log.log(Level.SEVERE, "benchmark process failed", t);
      protocol.println(ERROR + oneLine(t));
    }
    protocol.flush();
    dumpRecordings();
    Runtime.getRuntime().halt(0); // no graceful shutdown: kwik's can take 30 s
  }

  /** Writes the JFR recordings started with {@code -XX:StartFlightRecording}, as halt skips it. */
  private static void dumpRecordings() {
    if (!jdk.jfr.FlightRecorder.isInitialized()) {
      return;
    }
    for (jdk.jfr.Recording r : jdk.jfr.FlightRecorder.getFlightRecorder().getRecordings()) {
      try {
        if (r.getDestination() != null) {
          r.dump(r.getDestination());
        }
      } catch (IOException | RuntimeException e) {
        log.log(Level.WARNING, "cannot write the JFR recording", e);
      }
    }
  }

  private void serveCommands() throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in,
        StandardCharsets.UTF_8));
    for (String line; (line = in.readLine()) != null; ) {
      Fields command = Fields.parse(line);
      if (command.word().equals("exit")) {
        return;
      }
      try {
        answer(run(command));
      } catch (Exception | AssertionError e) {
        log.log(Level.WARNING, "command failed: " + line, e);
        out.println(ERROR + oneLine(e));
      }
    }
  }

  private Fields run(Fields command) throws Exception {
    switch (command.word()) {
      case "dial":
        port = command.getInt("port");
        caller = stack.dial(port);
        return new Fields("ok");
      case "dial-forwarded":
        forwarded = stack.forwarded(port);
        return new Fields("ok");
      case "stats":
        return JvmStats.snapshot();
      case "footprint":
        return JvmStats.footprint();
      case "latency":
        return Workloads.latency(driver(command), Workloads.Budget.of(command));
      case "throughput":
        return Workloads.throughput(driver(command), command.getInt("inFlight"),
            Workloads.Budget.of(command));
      case "stream":
        return Workloads.streaming(driver(command), command.getInt("count"),
            command.getInt("size"), Workloads.Budget.of(command));
      case "side-channel":
        return Workloads.sideChannel(driver(command), command.getInt("count"),
            command.getInt("size"), Workloads.Budget.of(command));
      case "setup":
        return Workloads.connectionSetup(stack, port, Workloads.Budget.of(command));
      case "open-idle":
        openIdle(command.getInt("count"));
        return new Fields("ok");
      case "await-clients":
        server.awaitClients(command.getInt("count"),
            Duration.ofMillis((long) (command.getDouble("seconds") * 1000)));
        return new Fields("ok");
      default:
        throw new IllegalArgumentException("unknown command " + command.word());
    }
  }

  /**
   * The client's connection (with {@code via=forwarded}, the calls the server forwards to an
   * agent), or in the server the callbacks into its first client.
   */
  private Stack.Caller driver(Fields command) {
    if (command.has("via") && command.get("via").equals("forwarded")) {
      if (forwarded == null) {
        throw new IllegalStateException("no dial-forwarded yet");
      }
      return forwarded;
    }
    if (server != null) {
      return server.callbacks();
    }
    if (caller == null) {
      throw new IllegalStateException("not dialed yet");
    }
    return caller;
  }

  /** Dials {@code count} more connections that stay idle, eight at a time. */
  private void openIdle(int count) throws Exception {
    ExecutorService dialers = Executors.newFixedThreadPool(8);
    try {
      List<Future<Stack.Caller>> dialed = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        dialed.add(dialers.submit(() -> stack.dial(port)));
      }
      for (Future<Stack.Caller> f : dialed) {
        idle.add(f.get());
      }
    } finally {
      dialers.shutdown();
    }
  }

  private void answer(Fields fields) {
    out.println(PREFIX + fields);
  }

  private static String oneLine(Throwable t) {
    return String.valueOf(t).replaceAll("\\s+", " ");
  }
}
