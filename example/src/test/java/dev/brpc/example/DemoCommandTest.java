package dev.brpc.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's "run the demo" command, as a newcomer runs it: README names the command, the
 * example's {@code demo} profile turns it into {@code java -classpath <built artifacts>
 * dev.brpc.example.Demo}, and that JVM must print the callback, step by step.
 */
class DemoCommandTest {
  static final Path ROOT = Path.of(System.getProperty("user.dir")).getParent();
  static final String COMMAND = "./mvnw -q -Pdemo -DskipTests -pl example -am verify";

  @TempDir Path workDir;

  @Test
  void readme_namesTheDemoCommand_andThePomRunsTheDemo() throws Exception {
    String readme = Files.readString(ROOT.resolve("README.md"));
    Matcher m = Pattern.compile("```sh\\n(.*?)```", Pattern.DOTALL).matcher(readme);
    assertTrue(m.find(), "README has no sh block");
    assertTrue(readme.indexOf("```sh") < readme.indexOf("## "), "commands are not at the top");
    assertTrue(m.group(1).contains(COMMAND + "\n"), "README's demo command changed: " + m.group(1));
    String pom = Files.readString(ROOT.resolve("example/pom.xml"));
    assertTrue(pom.contains("<id>demo</id>") && pom.contains(
        "<argument>dev.brpc.example.Demo</argument>"), "the demo profile no longer runs Demo");
  }

  @Test
  void demo_inItsOwnJvm_printsTheCallbackStepByStep() throws Exception {
    Process p = new ProcessBuilder(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-classpath", System.getProperty("java.class.path"), "dev.brpc.example.Demo")
        .directory(workDir.toFile())
        .redirectErrorStream(true)
        .redirectOutput(workDir.resolve("out.txt").toFile())
        .start();
    boolean exited = p.waitFor(90, TimeUnit.SECONDS);
    if (!exited) {
      p.destroyForcibly();
    }
    String out = Files.readString(workDir.resolve("out.txt"), StandardCharsets.UTF_8);
    assertTrue(exited, "demo did not finish:\n" + out);
    assertEquals(0, p.exitValue(), out);
    List<String> steps = List.of(
        "[server] listening on port",
        "[client] connected; the server knows us as",
        "[server] Greet from client",
        "[client] the server asks for our name: answering Ada",
        "[client] greeting: Hello, Ada!",
        "[server] streamed from the client: Countess of Lovelace",
        "[server] roll call: client",
        "[demo] done");
    int at = 0;
    for (String step : steps) {
      int i = out.indexOf(step, at);
      assertTrue(i >= 0, "missing, or out of order: " + step + "\n" + out);
      at = i;
    }
    assertTrue(new File(workDir.toFile(), "demo-certs/cert.pem").exists());
  }
}
