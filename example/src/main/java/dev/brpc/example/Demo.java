package dev.brpc.example;

import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The server and one client in one process, on 127.0.0.1 and a free port: the client greets,
 * the server calls it back for its name (and, streaming, for all its names), then the server's
 * scheduled roll call reaches the client outside of any request. Each step prints a line.
 * Exits with status 1 if a step does not happen.
 *
 * <p>Run it with {@code ./mvnw -q -Pdemo -DskipTests -pl example -am verify}.
 */
public final class Demo {
  private Demo() {}

  public static void main(String[] args) throws Exception {
    PrintStream out = System.out;
    boolean ok;
    try (ExampleServer server = ExampleServer.start(new InetSocketAddress("127.0.0.1", 0),
            null, null, Path.of("demo-certs"), Duration.ofSeconds(1), out);
        ExampleClient client = ExampleClient.connect("localhost", server.port(),
            Path.of("demo-certs", "cert.pem").toFile(), List.of("Ada", "Countess of Lovelace"),
            out)) {
      client.greet();
      client.greetAll();
      server.forgetRollCallAnswers(); // the one to see comes after the requests
      out.println("[demo] waiting for the server's scheduled roll call");
      ok = server.awaitRollCallAnswer(10, TimeUnit.SECONDS);
    }
    out.println(ok ? "[demo] done: the server called the client back, in and outside a request"
        : "[demo] FAILED: no roll call reached the client");
    System.exit(ok ? 0 : 1);
  }
}
