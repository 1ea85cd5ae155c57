package dev.brpc.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A {@link BenchProcess} in its own JVM ({@code java.home}'s {@code java}, this JVM's class
 * path), driven one command at a time over its stdin and stdout. Its stderr is copied to ours,
 * each line prefixed with its name.
 *
 * <p>Children never outlive the benchmark: {@link #close()} asks them to exit and kills them
 * if they do not, a shutdown hook kills any still alive when this JVM exits, and a child halts
 * by itself when its stdin closes or this process dies.
 *
 * <p>Not thread-safe: one thread sends commands. The reader threads it starts end with the
 * child.
 */
final class ChildJvm implements AutoCloseable {
  private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();
  private static final String EXITED = "\0exited";

  static {
    Runtime.getRuntime().addShutdownHook(new Thread(
        () -> LIVE.forEach(Process::destroyForcibly), "bench-kill-children"));
  }

  private final String name;
  private final Process process;
  private final Writer commands;
  private final BlockingQueue<String> answers = new LinkedBlockingQueue<>();

  private ChildJvm(String name, Process process) {
    this.name = name;
    this.process = process;
    this.commands = process.outputWriter(StandardCharsets.UTF_8);
    pump(process.getInputStream(), name + "-out", line -> {
      if (line.startsWith(BenchProcess.PREFIX) || line.startsWith(BenchProcess.ERROR)) {
        answers.add(line);
      } else {
        System.err.println("[" + name + "] " + line);
      }
    }, () -> answers.add(EXITED));
    pump(process.getErrorStream(), name + "-err",
        line -> System.err.println("[" + name + "] " + line), () -> { });
  }

  /**
   * Starts {@code BenchProcess role stack certDir}; {@link #hello} then waits until it is up.
   *
   * @param jvmArgs options for the child JVM, e.g. {@code -Xmx1g}
   */
  static ChildJvm start(String role, String stack, Path certDir, List<String> jvmArgs)
      throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmArgs);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(BenchProcess.class.getName());
    command.add(role);
    command.add(stack);
    command.add(certDir.toString());
    Process p = new ProcessBuilder(command).start();
    LIVE.add(p);
    return new ChildJvm(role + "-" + stack, p);
  }

  /** The child's first line: {@code ok} (with {@code port} for a server). */
  Fields hello(Duration timeout) throws IOException, InterruptedException {
    return await(timeout, "start");
  }

  /** Sends one command and waits for its answer. */
  Fields request(Fields command, Duration timeout) throws IOException, InterruptedException {
    commands.write(command + "\n");
    commands.flush();
    return await(timeout, command.toString());
  }

  private Fields await(Duration timeout, String what) throws IOException, InterruptedException {
    String line = answers.poll(timeout.toNanos(), TimeUnit.NANOSECONDS);
    if (line == null) {
      close();
      throw new IOException(name + " did not answer '" + what + "' within " + timeout
          + "; killed it");
    }
    if (line.equals(EXITED)) {
      answers.add(EXITED);
      throw new IOException(name + " exited (status " + process.waitFor() + ") during '" + what
          + "'; its stderr is above");
    }
    if (line.startsWith(BenchProcess.ERROR)) {
      throw new IOException(name + " failed '" + what + "': "
          + line.substring(BenchProcess.ERROR.length()));
    }
    return Fields.parse(line.substring(BenchProcess.PREFIX.length()));
  }

  /** Asks the child to exit; kills it if it has not within five seconds. */
  @Override
  public void close() {
    try {
      if (process.isAlive()) {
        commands.write("exit\n");
        commands.flush();
        commands.close();
      }
    } catch (IOException e) {
      // Already gone.
    }
    try {
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    } finally {
      LIVE.remove(process);
    }
  }

  private static void pump(InputStream stream, String threadName, Consumer<String> lines,
      Runnable atEnd) {
    Thread t = new Thread(() -> {
      try (BufferedReader in = new BufferedReader(
          new InputStreamReader(stream, StandardCharsets.UTF_8))) {
        for (String line; (line = in.readLine()) != null; ) {
          lines.accept(line);
        }
      } catch (IOException e) {
        // The child is gone.
      }
      atEnd.run();
    }, "bench-" + threadName);
    t.setDaemon(true);
    t.start();
  }
}
