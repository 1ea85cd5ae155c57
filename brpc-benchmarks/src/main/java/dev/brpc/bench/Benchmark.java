package dev.brpc.bench;

import dev.brpc.bench.ResultTable.Cpu;
import dev.brpc.bench.ResultTable.Row;
import dev.brpc.bench.ResultTable.Warmup;
import dev.brpc.quic.SelfSignedCertificate;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The benchmark: brpc over QUIC, grpc-java over Netty with TLS 1.3, and raw kwik streams, each
 * with its server and its client in two fresh JVMs ({@link ChildJvm}); this JVM only
 * orchestrates and is idle while they measure. Results go to stdout and to a Markdown file
 * (BENCHMARKS.md explains every row).
 *
 * <p>Run: {@code ./mvnw -q -pl brpc-benchmarks -am -Pbench -DskipTests verify}, or this main
 * class with {@code key=value} arguments ({@link Settings}).
 *
 * <p>Every measured figure follows a warm-up that lasts until the JIT of both JVMs has settled
 * (see {@link #warmUp}), and comes with the CPU time both JVMs used over the measured interval.
 *
 * <p>Not thread-safe: one thread runs it.
 */
public final class Benchmark {
  private static final Logger log = Logger.getLogger(Benchmark.class.getName());
  private static final Duration START_TIMEOUT = Duration.ofSeconds(60);
  private static final Duration SHORT_TIMEOUT = Duration.ofSeconds(60);

  private final Settings settings;
  private final Path certDir;
  private ResultTable table;

  Benchmark(Settings settings) {
    this.settings = settings;
    this.certDir = settings.output.toAbsolutePath().getParent().resolve("bench-certs");
  }

  public static void main(String[] args) {
    if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
      System.setProperty("java.util.logging.SimpleFormatter.format", "[bench] %5$s%6$s%n");
    }
    try {
      Settings settings = Settings.parse(args);
      ResultTable results = new Benchmark(settings).run();
      System.out.println(results.markdown());
      log.info("results written to " + settings.output.toAbsolutePath());
    } catch (Exception e) {
      log.log(Level.SEVERE, "benchmark failed", e);
      System.exit(1);
    }
  }

  /** Runs every workload of every stack, writes the Markdown file, returns the results. */
  ResultTable run() throws Exception {
    Files.createDirectories(certDir);
    SelfSignedCertificate.generate("localhost").writeTo(certDir);
    table = new ResultTable();
    describeMachine();
    for (String stack : settings.stacks) {
      measureStack(stack);
    }
    for (String stack : settings.stacks) {
      if (!stack.equals("kwik") && settings.workloads.contains("footprint")) {
        footprint(stack);
      }
    }
    Files.createDirectories(settings.output.toAbsolutePath().getParent());
    Files.writeString(settings.output, table.markdown(), StandardCharsets.UTF_8);
    return table;
  }

  /** Workloads 1 to 5 (and 3, callbacks, for brpc) on one fresh server/client pair. */
  private void measureStack(String stack) throws Exception {
    List<String> w = settings.workloads;
    if (w.stream().allMatch("footprint"::equals)) {
      return; // footprint runs on pairs of its own
    }
    try (Pair p = Pair.start(stack, certDir, childJvmArgs(), settings.profile)) {
      if (w.contains("latency")) {
        unaryLatency(p, p.client, stack, null);
      }
      if (w.contains("throughput")) {
        unaryThroughput(p, p.client, stack, null);
      }
      if (stack.startsWith("brpc") && w.contains("callback")) {
        // The server drives: it calls its client back over the client's own connection.
        unaryLatency(p, p.server, stack + " callback", null);
        unaryThroughput(p, p.server, stack + " callback", null);
      }
      if (w.contains("streaming")) {
        streaming(p, stack, "stream", stack);
      }
      if (stack.startsWith("brpc") && w.contains("sidechannel")) {
        // The same bytes per call as the streaming row, on a side channel of the call.
        streaming(p, stack, "side-channel", stack + " side channel");
      }
      if (w.contains("setup")) {
        connectionSetup(p, stack);
      }
      if (stack.startsWith("brpc") && w.contains("forwarded")) {
        // Last: its agent is one more client of the server (callbacks go to the first).
        p.client.request(new Fields("dial-forwarded"), SHORT_TIMEOUT);
        unaryLatency(p, p.client, stack + " forwarded", "forwarded");
        unaryThroughput(p, p.client, stack + " forwarded", "forwarded");
      }
    }
  }

  /** {@code via}: which of the driver's callers runs it ({@code BenchProcess}), or null. */
  private void unaryLatency(Pair p, ChildJvm driver, String label, String via)
      throws Exception {
    String workload = "unary latency, 1 in flight, " + Settings.PAYLOAD + " B";
    Fields command = via(new Fields("latency"), via);
    Measured m = measure(p, driver, label + ", " + workload, command, forDuration(command));
    Cpu cpu = m.cpu(m.result.getLong("ops"), 1e6, "CPU µs/call");
    for (String[] q : new String[][] {{"p50", "p50"}, {"p99", "p99"}, {"p999", "p99.9"}}) {
      table.add(new Row(workload, label, q[1], m.result.getLong(q[0]) / 1e3, "µs", false, cpu,
          m.warmup));
    }
  }

  private void unaryThroughput(Pair p, ChildJvm driver, String label, String via)
      throws Exception {
    String workload = "unary throughput, " + settings.inFlight + " in flight, 1 connection";
    Fields command = via(new Fields("throughput").put("inFlight", settings.inFlight), via);
    Measured m = measure(p, driver, label + ", " + workload, command, forDuration(command));
    long ops = m.result.getLong("ops");
    table.add(new Row(workload, label, "throughput", ops / seconds(m.result), "calls/s", true,
        m.cpu(ops, 1e6, "CPU µs/call"), m.warmup));
  }

  private static Fields via(Fields command, String via) {
    return via == null ? command : command.put("via", via);
  }

  /** {@code command}: {@code stream}, or {@code side-channel} for the same bytes raw. */
  private void streaming(Pair p, String stack, String command, String label) throws Exception {
    String workload = "server streaming, " + Settings.STREAM_MESSAGE / 1024 + " KiB messages";
    Fields c = new Fields(command)
        .put("count", settings.streamMessages).put("size", Settings.STREAM_MESSAGE);
    Measured m = measure(p, p.client, label + ", " + workload, c, forDuration(c));
    double mb = m.result.getLong("bytes") / 1e6;
    table.add(new Row(workload, label, "throughput", mb / seconds(m.result), "MB/s", true,
        m.cpu(mb, 1e3, "CPU ms/MB"), m.warmup));
  }

  private void connectionSetup(Pair p, String stack) throws Exception {
    String workload = "connection setup, dial to first call";
    Fields command = new Fields("setup");
    Measured m = measure(p, p.client, stack + ", " + workload, command,
        command.with("seconds", 0).with("ops", settings.connections));
    Cpu cpu = m.cpu(m.result.getLong("ops"), 1e3, "CPU ms/conn");
    for (String q : new String[] {"p50", "p90"}) {
      table.add(new Row(workload, stack, q, m.result.getLong(q) / 1e6, "ms", false, cpu,
          m.warmup));
    }
  }

  private Fields forDuration(Fields command) {
    return command.with("seconds", settings.measure.toMillis() / 1000.0).with("ops", 0);
  }

  /** A measured interval: the driver's answer, both JVMs' CPU over it, the warm-up before. */
  private record Measured(Fields result, long serverCpuNanos, long clientCpuNanos,
      Warmup warmup) {
    /**
     * CPU time per unit of work (a call, a MB, a connection), each JVM's separately.
     *
     * @param ticksPerSecond 1e6 to report in µs, 1e3 in ms
     */
    Cpu cpu(double units, double ticksPerSecond, String unit) {
      double wall = result.getLong("nanos") / 1e9;
      int cores = Runtime.getRuntime().availableProcessors();
      return new Cpu(serverCpuNanos / 1e9 * ticksPerSecond / units,
          clientCpuNanos / 1e9 * ticksPerSecond / units,
          unit, 100 * (serverCpuNanos + clientCpuNanos) / 1e9 / wall / cores);
    }
  }

  /**
   * Warms up with {@code command}, then runs {@code measured} (the same command with the
   * measured interval's budget) with both JVMs' CPU time taken around it.
   */
  private Measured measure(Pair p, ChildJvm driver, String what, Fields command,
      Fields measured) throws Exception {
    Warmup warmup = warmUp(p, driver, what, command);
    Duration timeout = settings.measure.plusSeconds(120 + 10L * settings.connections);
    Fields server0 = p.server.request(new Fields("stats"), SHORT_TIMEOUT);
    Fields client0 = p.client.request(new Fields("stats"), SHORT_TIMEOUT);
    Fields result = driver.request(measured, timeout);
    Fields server1 = p.server.request(new Fields("stats"), SHORT_TIMEOUT);
    Fields client1 = p.client.request(new Fields("stats"), SHORT_TIMEOUT);
    log.info(String.format(Locale.ROOT, "%s: %s after %.1f s of warm-up%s", what, result,
        warmup.seconds(), warmup.settled() ? "" : " (JIT not settled)"));
    return new Measured(result,
        server1.getLong("cpuNanos") - server0.getLong("cpuNanos"),
        client1.getLong("cpuNanos") - client0.getLong("cpuNanos"), warmup);
  }

  /**
   * Runs {@code command} in rounds of {@code warmup-round} until the JIT has settled: in each
   * of the last {@code settle-rounds} rounds, neither JVM's total JIT compilation time
   * ({@code CompilationMXBean.getTotalCompilationTime()}) grew by more than {@code settle} ms
   * per second of wall time. Gives up after {@code warmup-max}; the row then says "(cap)".
   */
  private Warmup warmUp(Pair p, ChildJvm driver, String what, Fields command) throws Exception {
    Fields round = command.with("seconds", settings.warmupRound.toMillis() / 1000.0)
        .with("ops", 0);
    Duration timeout = settings.warmupRound.plusSeconds(120);
    long start = System.nanoTime();
    long[] jit = jitMillis(p);
    long then = start;
    int quietRounds = 0;
    while (true) {
      driver.request(round, timeout);
      long[] nowJit = jitMillis(p);
      long now = System.nanoTime();
      double perSecond = Math.max(nowJit[0] - jit[0], nowJit[1] - jit[1]) / ((now - then) / 1e9);
      quietRounds = perSecond <= settings.settleMillisPerSecond ? quietRounds + 1 : 0;
      jit = nowJit;
      then = now;
      double elapsed = (now - start) / 1e9;
      log.fine(() -> String.format(Locale.ROOT, "%s: warm-up %.1f s, JIT %.0f ms/s", what,
          elapsed, perSecond));
      if (quietRounds >= settings.settleRounds) {
        return new Warmup(elapsed, true);
      }
      if (now - start >= settings.warmupMax.toNanos()) {
        log.warning(String.format(Locale.ROOT, "%s: JIT still compiling %.0f ms/s after %.1f s"
            + " of warm-up; measuring anyway", what, perSecond, elapsed));
        return new Warmup(elapsed, false);
      }
    }
  }

  private static long[] jitMillis(Pair p) throws Exception {
    return new long[] {
        p.server.request(new Fields("stats"), SHORT_TIMEOUT).getLong("compileMillis"),
        p.client.request(new Fields("stats"), SHORT_TIMEOUT).getLong("compileMillis")};
  }

  /**
   * Workload 6 on a fresh pair: the server JVM's threads, heap after GC and resident memory
   * with 1 client, then with each count of idle clients; each row is the growth divided by the
   * clients added, i.e. the cost of one more idle client.
   */
  private void footprint(String stack) throws Exception {
    try (Pair p = Pair.start(stack, certDir, childJvmArgs(), settings.profile)) {
      p.server.request(new Fields("await-clients").put("count", 1).put("seconds", 60),
          SHORT_TIMEOUT);
      Fields base = p.server.request(new Fields("footprint"), SHORT_TIMEOUT);
      int connected = 1;
      for (int clients : settings.clients) {
        Duration timeout = Duration.ofSeconds(120L + clients);
        p.client.request(new Fields("open-idle").put("count", clients - connected), timeout);
        connected = clients;
        p.server.request(new Fields("await-clients").put("count", clients)
            .put("seconds", timeout.toSeconds()), timeout);
        Fields f = p.server.request(new Fields("footprint"), SHORT_TIMEOUT);
        log.info(stack + ", " + clients + " idle clients: " + f);
        String workload = "footprint, " + clients + " idle clients";
        double added = clients - 1;
        table.add(new Row(workload, stack, "server threads", delta(base, f, "threads") / added,
            "per client", false, null, null));
        table.add(new Row(workload, stack, "server heap", delta(base, f, "heapBytes") / added
            / 1024, "KiB per client", false, null, null));
        table.add(new Row(workload, stack, "server RSS", base.getLong("rssBytes") < 0
            ? Double.NaN : delta(base, f, "rssBytes") / added / 1024, "KiB per client", false,
            null, null));
      }
      idleCost(p, stack, connected);
    }
  }

  /**
   * What {@code clients} idle clients cost while nothing happens, over {@link Settings#idle}:
   * the packets and bytes on the loopback interface (both directions: keepalive, probes, their
   * ACKs), per client per minute, and the server JVM's CPU, in % of one core. Loopback counters
   * come from /proc/net/dev (Linux; elsewhere the rows say n/a); nothing else on the machine
   * should use loopback meanwhile.
   */
  private void idleCost(Pair p, String stack, int clients) throws Exception {
    long[] lo0 = loopbackPacketsAndBytes();
    long cpu0 = p.server.request(new Fields("stats"), SHORT_TIMEOUT).getLong("cpuNanos");
    long t0 = System.nanoTime();
    Thread.sleep(settings.idle.toMillis()); // the measured interval itself, not a wait for an event
    long cpu1 = p.server.request(new Fields("stats"), SHORT_TIMEOUT).getLong("cpuNanos");
    long[] lo1 = loopbackPacketsAndBytes();
    double minutes = (System.nanoTime() - t0) / 60e9;
    String workload = "idle cost, " + clients + " idle clients";
    double perClientMinute = clients * minutes;
    table.add(new Row(workload, stack, "loopback packets", lo0 == null ? Double.NaN
        : (lo1[0] - lo0[0]) / perClientMinute, "per client per minute", false, null, null));
    table.add(new Row(workload, stack, "loopback bytes", lo0 == null ? Double.NaN
        : (lo1[1] - lo0[1]) / perClientMinute, "per client per minute", false, null, null));
    table.add(new Row(workload, stack, "server CPU", (cpu1 - cpu0) / (minutes * 60e9) * 100,
        "% of one core", false, null, null));
  }

  /** Packets and bytes sent on the loopback interface so far; null where unknown. */
  private static long[] loopbackPacketsAndBytes() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/net/dev"))) {
        String l = line.trim();
        if (l.startsWith("lo:")) {
          // lo: rx bytes, packets, errs, drop, fifo, frame, compressed, multicast, tx bytes, packets
          String[] f = l.substring(3).trim().split("\\s+");
          return new long[] {Long.parseLong(f[9]), Long.parseLong(f[8])};
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux
    }
    return null;
  }

  private static double delta(Fields before, Fields after, String key) {
    return after.getLong(key) - before.getLong(key);
  }

  private static double seconds(Fields result) {
    return result.getLong("nanos") / 1e9;
  }

  private List<String> childJvmArgs() {
    List<String> args = new ArrayList<>(settings.jvmArgs);
    args.add("-Djava.util.logging.SimpleFormatter.format=%4$s %3$s: %5$s%6$s%n");
    if (!settings.nettySsl.isEmpty()) {
      args.add("-Dbench.nettySsl=" + settings.nettySsl);
    }
    return args;
  }

  /** The lines printed above the table: machine, JDK, versions, settings. */
  private void describeMachine() throws IOException {
    if (!settings.nettySsl.isEmpty()) {
      System.setProperty("bench.nettySsl", settings.nettySsl);
    }
    Properties versions = new Properties();
    try (InputStream in = Benchmark.class.getResourceAsStream("/bench-versions.properties")) {
      if (in != null) {
        versions.load(in);
      }
    }
    String cpu = "unknown CPU";
    Path cpuinfo = Path.of("/proc/cpuinfo");
    if (Files.isReadable(cpuinfo)) {
      cpu = Files.readAllLines(cpuinfo).stream().filter(l -> l.startsWith("model name"))
          .map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse(cpu);
    }
    long memory = ((com.sun.management.OperatingSystemMXBean)
        ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize();
    table.describe("date: " + ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME));
    table.describe(String.format(Locale.ROOT, "machine: %d cores (%s), %.1f GiB RAM, %s %s %s",
        Runtime.getRuntime().availableProcessors(), cpu, memory / (1024.0 * 1024 * 1024),
        System.getProperty("os.name"), System.getProperty("os.version"),
        System.getProperty("os.arch")));
    table.describe("JDK: " + System.getProperty("java.vm.name") + " "
        + System.getProperty("java.runtime.version") + " (" + System.getProperty("java.vendor")
        + ")");
    table.describe("libraries: grpc-java " + versions.getProperty("grpc", "?") + ", kwik "
        + versions.getProperty("kwik", "?") + ", protobuf "
        + versions.getProperty("protobuf", "?") + "; Netty's TLS engine: "
        + NettyStack.sslProvider() + "; kwik's TLS: the JDK's crypto");
    table.describe("child JVM options: " + String.join(" ", settings.jvmArgs));
    table.describe("settings: " + settings);
    // The benchmark itself then keeps the load near the number of cores: only this one tells.
    table.describe(String.format(Locale.ROOT, "load average before the run: %.2f (near 0 on a"
        + " quiet machine)", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage()));
  }

  /**
   * A server JVM and a client JVM of one stack, the client dialed to the server. Started in
   * parallel; closing ends both. Used by the one orchestrating thread.
   */
  private record Pair(ChildJvm server, ChildJvm client) implements AutoCloseable {
    /** @param profile where each JVM writes a JFR recording, or null for none */
    static Pair start(String stack, Path certDir, List<String> jvmArgs, Path profile)
        throws Exception {
      ChildJvm server = ChildJvm.start("server", stack, certDir,
          withRecording(jvmArgs, profile, stack, "server"));
      ChildJvm client = null;
      try {
        client = ChildJvm.start("client", stack, certDir,
            withRecording(jvmArgs, profile, stack, "client"));
        int port = server.hello(START_TIMEOUT).getInt("port");
        client.hello(START_TIMEOUT);
        client.request(new Fields("dial").put("port", port), START_TIMEOUT);
        return new Pair(server, client);
      } catch (Exception e) {
        if (client != null) {
          client.close();
        }
        server.close();
        throw e;
      }
    }

    /**
     * Adds a JFR recording (the JDK's "profile" settings) that the child writes when it exits
     * ({@link BenchProcess} dumps it before halting).
     */
    private static List<String> withRecording(List<String> jvmArgs, Path profile, String stack,
        String role) throws IOException {
      if (profile == null) {
        return jvmArgs;
      }
      Files.createDirectories(profile);
      List<String> args = new ArrayList<>(jvmArgs);
      args.add("-XX:StartFlightRecording=settings=profile,filename="
          + profile.toAbsolutePath().resolve(stack + "-" + role + ".jfr"));
      return args;
    }

    @Override
    public void close() {
      client.close();
      server.close();
    }
  }
}
