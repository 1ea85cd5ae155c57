package dev.brpc.reliability;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The suite's two profiles. The default run (the README's test command) uses the smaller
 * figures; {@code -Preliability-full} sets {@code reliability.full} and the full
 * figures. Measured results go to {@code target/reliability-results.md}, from which
 * RELIABILITY.md's table is updated.
 *
 * <p>Thread-safe.
 */
final class Profile {
  static final boolean FULL = Boolean.getBoolean("reliability.full");
  private static final Path RESULTS = Path.of("target", "reliability-results.md");

  private Profile() {}

  /** {@code full} in the full profile, {@code quick} otherwise. */
  static int pick(int quick, int full) {
    return FULL ? full : quick;
  }

  /** Records one measured figure of a scenario, and prints it. */
  static synchronized void record(String scenario, String figure) {
    String line = "| " + scenario + " | " + (FULL ? "full" : "default") + " | " + figure
        + " |\n";
    System.out.print("RESULT " + line);
    try {
      Files.createDirectories(RESULTS.getParent());
      Files.writeString(RESULTS, line, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
          StandardOpenOption.APPEND);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
