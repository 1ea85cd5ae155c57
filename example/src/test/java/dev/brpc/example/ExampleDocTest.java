package dev.brpc.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Keeps EXAMPLE.md and README.md in step with the code: every block marked
 * {@code <!-- snippet: path region -->} must equal the lines between {@code [START region]} and
 * {@code [END region]} in that file (indentation removed), which compiles and runs in the demo.
 */
class ExampleDocTest {
  private static final Pattern SNIPPET = Pattern.compile(
      "<!-- snippet: (\\S+) (\\S+) -->\\n```\\w*\\n(.*?)```", Pattern.DOTALL);

  @Test
  void everySnippetInExampleMd_isTheCodeItQuotes() throws Exception {
    assertTrue(checkSnippets("EXAMPLE.md") >= 6, "expected the proto, server and client snippets");
  }

  @Test
  void readmeSnippet_isTheCodeItQuotes() throws Exception {
    assertEquals(1, checkSnippets("README.md"));
  }

  /** Checks every marked snippet of {@code doc}; returns how many there are. */
  private static int checkSnippets(String doc) throws IOException {
    Matcher m = SNIPPET.matcher(Files.readString(DemoCommandTest.ROOT.resolve(doc)));
    int count = 0;
    while (m.find()) {
      count++;
      String region = region(DemoCommandTest.ROOT.resolve(m.group(1)), m.group(2));
      assertEquals(region, m.group(3), doc + "'s copy of " + m.group(1) + " " + m.group(2)
          + " is out of date");
    }
    return count;
  }

  /** The lines between the region's markers, with their common indentation removed. */
  static String region(Path file, String name) throws IOException {
    List<String> lines = Files.readAllLines(file);
    int start = lines.indexOf(indentOf(lines, "// [START " + name + "]"));
    int end = lines.indexOf(indentOf(lines, "// [END " + name + "]"));
    assertTrue(start >= 0 && end > start, "no region " + name + " in " + file);
    List<String> body = new ArrayList<>(lines.subList(start + 1, end));
    int indent = body.stream().filter(l -> !l.isBlank())
        .mapToInt(l -> l.length() - l.stripLeading().length()).min().orElse(0);
    StringBuilder b = new StringBuilder();
    for (String l : body) {
      b.append(l.isBlank() ? "" : l.substring(indent)).append('\n');
    }
    return b.toString();
  }

  private static String indentOf(List<String> lines, String marker) {
    return lines.stream().filter(l -> l.strip().equals(marker)).findFirst().orElse(marker);
  }
}
