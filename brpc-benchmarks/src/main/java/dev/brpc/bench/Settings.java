package dev.brpc.bench;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * What a benchmark run does, from {@code key=value} arguments (BENCHMARKS.md lists them). The
 * defaults are the full benchmark; {@link #smoke} is the few-second run of the smoke test.
 *
 * <p>Not thread-safe while being parsed; read-only afterwards.
 */
final class Settings {
  /** Stacks to measure, in this order. */
  List<String> stacks = List.of("netty", "brpc", "brpc-native", "kwik");
  /** Workloads to run: a subset of {@link #ALL_WORKLOADS}, for profiling one of them. */
  List<String> workloads = ALL_WORKLOADS;
  /** Length of each measured interval (latency, throughput, streaming). */
  Duration measure = Duration.ofSeconds(15);
  /** Warm-up runs the workload in rounds this long, checking JIT activity after each. */
  Duration warmupRound = Duration.ofSeconds(1);
  /** Warm-up gives up waiting for the JIT after this long (the row is marked). */
  Duration warmupMax = Duration.ofSeconds(60);
  /** The JIT has settled when it compiles less than this many ms per second of wall time... */
  double settleMillisPerSecond = 10;
  /** ...in both JVMs, for this many rounds in a row. */
  int settleRounds = 3;
  /** Calls in flight for the throughput rows. */
  int inFlight = 64;
  /** Messages per server-streaming call (of {@link #STREAM_MESSAGE} bytes each). */
  int streamMessages = 64;
  /** Fresh connections timed for the connection-setup row. */
  int connections = 50;
  /** Idle clients connected for the footprint rows, ascending. */
  List<Integer> clients = List.of(100, 1000);
  /**
   * How long the largest count of idle clients is watched for the idle-cost rows: loopback
   * packets and bytes, the server's CPU.
   */
  Duration idle = Duration.ofSeconds(60);
  /** Options of every child JVM. */
  List<String> jvmArgs = List.of("-Xms1g", "-Xmx1g");
  /** Netty's TLS engine: empty for grpc's default, else OPENSSL or JDK. */
  String nettySsl = "";
  /** Where each child JVM writes a JFR recording ({@code <stack>-<role>.jfr}); null: none. */
  Path profile;
  /** Where the Markdown results go. */
  Path output = Path.of("target", "results.md");

  static final List<String> ALL_WORKLOADS =
      List.of("latency", "throughput", "callback", "streaming", "sidechannel", "setup",
          "forwarded", "footprint");
  static final int PAYLOAD = 16;
  static final int STREAM_MESSAGE = 64 * 1024;

  /** Tiny numbers: every workload once with every stack, in seconds; measures nothing. */
  static Settings smoke(Path output) {
    Settings s = new Settings();
    s.measure = Duration.ofMillis(200);
    s.warmupRound = Duration.ofMillis(100);
    s.warmupMax = Duration.ofMillis(200);
    s.inFlight = 4;
    s.streamMessages = 4;
    s.connections = 2;
    s.clients = List.of(2, 4);
    s.idle = Duration.ofMillis(200);
    s.jvmArgs = List.of("-Xmx256m", "-XX:TieredStopAtLevel=1");
    s.output = output;
    return s;
  }

  /**
   * Parses {@code key=value} words; several may share one argument, separated by spaces (as
   * {@code -Dbench.args} passes them).
   */
  static Settings parse(String... args) {
    Settings s = new Settings();
    for (String arg : args) {
      for (String word : arg.trim().split("\\s+")) {
        if (!word.isEmpty()) {
          s.set(word);
        }
      }
    }
    return s;
  }

  private void set(String word) {
    int eq = word.indexOf('=');
    if (eq <= 0) {
      throw new IllegalArgumentException("expected key=value, got '" + word + "'");
    }
    String key = word.substring(0, eq);
    String value = word.substring(eq + 1);
    switch (key) {
      case "stacks":
        stacks = List.of(value.split(","));
        break;
      case "workloads":
        workloads = List.of(value.split(","));
        for (String w : workloads) {
          if (!ALL_WORKLOADS.contains(w)) {
            throw new IllegalArgumentException("unknown workload '" + w + "'; one of "
                + ALL_WORKLOADS);
          }
        }
        break;
      case "measure":
        measure = duration(value);
        break;
      case "warmup-round":
        warmupRound = duration(value);
        break;
      case "warmup-max":
        warmupMax = duration(value);
        break;
      case "settle":
        settleMillisPerSecond = Double.parseDouble(value);
        break;
      case "settle-rounds":
        settleRounds = Integer.parseInt(value);
        break;
      case "in-flight":
        inFlight = Integer.parseInt(value);
        break;
      case "stream-messages":
        streamMessages = Integer.parseInt(value);
        break;
      case "connections":
        connections = Integer.parseInt(value);
        break;
      case "clients":
        List<Integer> c = new ArrayList<>();
        for (String n : value.split(",")) {
          c.add(Integer.parseInt(n));
        }
        for (int i = 0; i < c.size(); i++) {
          if (c.get(i) < 2 || (i > 0 && c.get(i) <= c.get(i - 1))) {
            throw new IllegalArgumentException("clients must be ascending, each >= 2: " + value);
          }
        }
        clients = List.copyOf(c);
        break;
      case "idle":
        idle = duration(value);
        break;
      case "jvm-args":
        jvmArgs = List.of(value.split(","));
        break;
      case "netty-ssl":
        nettySsl = value;
        break;
      case "profile":
        profile = Path.of(value);
        break;
      case "output":
        output = Path.of(value);
        break;
      default:
        throw new IllegalArgumentException("unknown setting '" + key + "'; see BENCHMARKS.md");
    }
  }

  /** {@code 15s}, {@code 500ms} or plain seconds. */
  private static Duration duration(String value) {
    if (value.endsWith("ms")) {
      return Duration.ofMillis(Long.parseLong(value.substring(0, value.length() - 2)));
    }
    String seconds = value.endsWith("s") ? value.substring(0, value.length() - 1) : value;
    return Duration.ofMillis((long) (Double.parseDouble(seconds) * 1000));
  }

  /** The settings as printed with the results. */
  @Override
  public String toString() {
    return "stacks=" + String.join(",", stacks)
        + (workloads == ALL_WORKLOADS ? "" : " workloads=" + String.join(",", workloads))
        + " measure=" + seconds(measure)
        + " warmup-round=" + seconds(warmupRound) + " warmup-max=" + seconds(warmupMax)
        + " settle=" + settleMillisPerSecond + "ms/s settle-rounds=" + settleRounds
        + " in-flight=" + inFlight + " stream-messages=" + streamMessages
        + " connections=" + connections + " clients=" + clients.toString().replace(" ", "")
        + " jvm-args=" + String.join(",", jvmArgs)
        + (nettySsl.isEmpty() ? "" : " netty-ssl=" + nettySsl)
        + (profile == null ? "" : " profile=" + profile);
  }

  static String seconds(Duration d) {
    double x = d.toMillis() / 1000.0;
    return (x == Math.rint(x) ? String.valueOf((long) x) : String.valueOf(x)) + "s";
  }
}
