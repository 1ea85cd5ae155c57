package dev.brpc.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.bench.ResultTable.Row;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the whole benchmark once with tiny numbers, so a change that breaks it fails the build.
 * It proves that every workload runs end to end with every stack in child JVMs and that no
 * child survives; it asserts nothing about speed.
 */
class BenchmarkSmokeTest {
  @Test
  @Timeout(120)
  void run_tinySettings_everyRowFromEveryStack_andNoChildProcessLeft(@TempDir Path dir)
      throws Exception {
    Path output = dir.resolve("results.md");

    ResultTable results = new Benchmark(Settings.smoke(output)).run();

    Set<String> expected = new TreeSet<>();
    for (String stack : List.of("netty", "brpc", "brpc-native", "kwik")) {
      expected.addAll(List.of(
          "unary latency, 1 in flight, 16 B | " + stack + " | p50",
          "unary latency, 1 in flight, 16 B | " + stack + " | p99",
          "unary latency, 1 in flight, 16 B | " + stack + " | p99.9",
          "unary throughput, 4 in flight, 1 connection | " + stack + " | throughput",
          "server streaming, 64 KiB messages | " + stack + " | throughput",
          "connection setup, dial to first call | " + stack + " | p50",
          "connection setup, dial to first call | " + stack + " | p90"));
    }
    for (String brpc : List.of("brpc callback", "brpc-native callback", "brpc forwarded",
        "brpc-native forwarded")) {
      for (String metric : List.of("p50", "p99", "p99.9")) {
        expected.add("unary latency, 1 in flight, 16 B | " + brpc + " | " + metric);
      }
      expected.add("unary throughput, 4 in flight, 1 connection | " + brpc + " | throughput");
    }
    for (String brpc : List.of("brpc side channel", "brpc-native side channel")) {
      expected.add("server streaming, 64 KiB messages | " + brpc + " | throughput");
    }
    for (String stack : List.of("netty", "brpc", "brpc-native")) {
      for (int clients : List.of(2, 4)) {
        for (String metric : List.of("server threads", "server heap", "server RSS")) {
          expected.add("footprint, " + clients + " idle clients | " + stack + " | " + metric);
        }
      }
      for (String metric : List.of("loopback packets", "loopback bytes", "server CPU")) {
        expected.add("idle cost, 4 idle clients | " + stack + " | " + metric);
      }
    }
    assertEquals(expected, results.rows().stream()
        .map(r -> r.workload() + " | " + r.stack() + " | " + r.metric())
        .collect(Collectors.toCollection(TreeSet::new)));
    // The process CPU clock ticks in 10 ms steps: on a fast machine both sides of one tiny row
    // (two Netty connection setups, say) may read 0, so CPU is asserted per stack, over all of
    // its rows, which together take far more than a tick.
    Map<String, Double> cpuByStack = new TreeMap<>();
    for (Row r : results.rows()) {
      if (r.cpu() != null) {
        assertTrue(r.value() > 0, "measured nothing: " + r);
        assertTrue(r.cpu().serverPerUnit() >= 0 && r.cpu().clientPerUnit() >= 0,
            "negative CPU time: " + r);
        // A side channel stack has one tiny row: its CPU counts with its engine's stack.
        cpuByStack.merge(r.stack().replace(" side channel", ""),
            r.cpu().serverPerUnit() + r.cpu().clientPerUnit(), Double::sum);
        assertTrue(r.warmup().seconds() > 0, "no warm-up: " + r);
        assertTrue(results.baseline(r) > 0, "no Netty figure to compare with: " + r);
      }
    }
    assertEquals(Set.of("netty", "brpc", "brpc-native", "kwik", "brpc callback",
        "brpc-native callback", "brpc forwarded", "brpc-native forwarded"), cpuByStack.keySet());
    cpuByStack.forEach((stack, cpu) -> assertTrue(cpu > 0, "no CPU time in any row: " + stack));
    String markdown = Files.readString(output);
    assertTrue(markdown.contains("| workload | stack | metric |"), markdown);
    assertTrue(markdown.contains("machine: "), markdown);

    assertEquals(List.of(), ProcessHandle.current().descendants()
        .map(h -> h.pid() + " " + h.info().commandLine().orElse("?"))
        .collect(Collectors.toList()), "child processes left behind");
  }
}
