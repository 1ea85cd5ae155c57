package dev.brpc.bench;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The benchmark's results: one {@link Row} per (workload, stack, metric), rendered as a
 * Markdown document with the machine description on top. BENCHMARKS.md explains the columns.
 *
 * <p>Not thread-safe: filled in by the one orchestrating thread.
 */
final class ResultTable {
  /** The stack every ratio is taken against. */
  static final String BASELINE = "netty";

  /** CPU time of the two JVMs over a measured interval, per unit of work. */
  record Cpu(double serverPerUnit, double clientPerUnit, String unit, double coresPercent) {}

  /** How long warm-up ran, and whether the JIT had settled by then (else it hit the cap). */
  record Warmup(double seconds, boolean settled) {}

  /**
   * One figure. {@code workload} and {@code metric} pair it with the {@link #BASELINE} row it
   * is compared with; {@code cpu} and {@code warmup} are null where they do not apply.
   */
  record Row(String workload, String stack, String metric, double value, String unit,
      boolean higherIsBetter, Cpu cpu, Warmup warmup) {}

  private final List<String> description = new ArrayList<>();
  private final List<Row> rows = new ArrayList<>();

  /** A line of the description above the table (machine, JDK, settings...). */
  void describe(String line) {
    description.add(line);
  }

  void add(Row row) {
    rows.add(row);
  }

  List<Row> rows() {
    return List.copyOf(rows);
  }

  /** The value of the baseline row for the same workload and metric, or NaN. */
  double baseline(Row row) {
    for (Row r : rows) {
      if (r.stack().equals(BASELINE) && r.workload().equals(row.workload())
          && r.metric().equals(row.metric())) {
        return r.value();
      }
    }
    return Double.NaN;
  }

  /** Rows grouped by workload (in the order workloads first appeared), stacks in run order. */
  String markdown() {
    Map<String, List<Row>> byWorkload = new LinkedHashMap<>();
    for (Row r : rows) {
      byWorkload.computeIfAbsent(r.workload(), w -> new ArrayList<>()).add(r);
    }
    StringBuilder md = new StringBuilder("# brpc-java benchmark results\n\n");
    for (String line : description) {
      md.append("- ").append(line).append('\n');
    }
    md.append("\n| workload | stack | metric | value | unit | vs ").append(BASELINE)
        .append(" | better | server CPU | client CPU | CPU unit | cores % | warm-up s |\n")
        .append("|---|---|---|--:|---|--:|---|--:|--:|---|--:|--:|\n");
    for (List<Row> group : byWorkload.values()) {
      for (Row r : group) {
        Cpu c = r.cpu();
        Warmup w = r.warmup();
        md.append("| ").append(r.workload())
            .append(" | ").append(r.stack())
            .append(" | ").append(r.metric())
            .append(" | ").append(number(r.value()))
            .append(" | ").append(r.unit())
            .append(" | ").append(ratio(r.value() / baseline(r)))
            .append(" | ").append(r.higherIsBetter() ? "higher" : "lower")
            .append(" | ").append(c == null ? "-" : number(c.serverPerUnit()))
            .append(" | ").append(c == null ? "-" : number(c.clientPerUnit()))
            .append(" | ").append(c == null ? "-" : c.unit())
            .append(" | ").append(c == null ? "-" : number(c.coresPercent()))
            .append(" | ").append(w == null ? "-"
                : String.format(Locale.ROOT, "%.1f", w.seconds()) + (w.settled() ? "" : " (cap)"))
            .append(" |\n");
      }
    }
    return md.toString();
  }

  /** Three significant digits, no exponent: 0.0123, 1.23, 12.3, 123, 12345. */
  static String number(double v) {
    if (Double.isNaN(v) || Double.isInfinite(v)) {
      return "n/a";
    }
    double a = Math.abs(v);
    int decimals = a == 0 || a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a >= 0.1 ? 3 : 4;
    return String.format(Locale.ROOT, "%." + decimals + "f", v);
  }

  private static String ratio(double r) {
    return Double.isNaN(r) || Double.isInfinite(r) ? "-" : String.format(Locale.ROOT, "%.2f", r);
  }
}
