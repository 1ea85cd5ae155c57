package dev.brpc.example;

import dev.brpc.BrpcClient;
import dev.brpc.example.proto.GreetRequest;
import dev.brpc.example.proto.GreeterGrpc;
import java.io.File;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The example's client: serves Namer to the server, calls Greet (whose handler calls Namer
 * back) and prints the greeting, then GreetAll (a streaming callback), then stays connected so
 * the server's roll call reaches it, until interrupted.
 *
 * <pre>
 * java dev.brpc.example.ExampleClient [--host localhost] [--port 8443]
 *     [--trust demo-certs/cert.pem] [--names Ada,Countess of Lovelace]
 * </pre>
 *
 * <p>Thread-safe.
 */
public final class ExampleClient implements AutoCloseable {
  private static final String USAGE = "ExampleClient [--host localhost] [--port 8443]"
      + " [--trust demo-certs/cert.pem] [--names Ada,Countess of Lovelace]";

  private final BrpcClient client;
  private final PrintStream out;

  private ExampleClient(BrpcClient client, PrintStream out) {
    this.client = client;
    this.out = out;
  }

  public static void main(String[] args) throws Exception {
    Options o = new Options(args, Set.of("--host", "--port", "--trust", "--names"), USAGE);
    try (ExampleClient client = connect(o.get("--host", "localhost"), o.getInt("--port", 8443),
        new File(o.get("--trust", "demo-certs/cert.pem")),
        Arrays.asList(o.get("--names", "Ada,Countess of Lovelace").split(",")), System.out)) {
      client.greet();
      client.greetAll();
      System.out.println("[client] staying connected for the server's roll call; Ctrl-C ends");
      new CountDownLatch(1).await();
    }
  }

  /** Connects to the server, trusting the certificate in {@code trust}, serving Namer. */
  static ExampleClient connect(String host, int port, File trust, List<String> names,
      PrintStream out) {
    // [START client]
    BrpcClient client = BrpcClient.forAddress(host, port)
        .trustCertificates(trust)                      // the server's certificate, checked
        .addService(new NamerService(names, out))      // what the server may call on us
        .build();
    UUID id = client.connect();                        // the id the server gave this connection
    // [END client]
    out.println("[client] connected; the server knows us as " + id);
    return new ExampleClient(client, out);
  }

  /** Calls Greet, prints and returns the greeting. */
  String greet() {
    // [START greet]
    String greeting = GreeterGrpc.newBlockingStub(client.channel())
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .greet(GreetRequest.getDefaultInstance())
        .getGreeting();
    // [END greet]
    out.println("[client] greeting: " + greeting);
    return greeting;
  }

  /** Calls GreetAll, prints and returns the greetings. */
  List<String> greetAll() {
    List<String> greetings = new ArrayList<>();
    GreeterGrpc.newBlockingStub(client.channel()).withDeadlineAfter(10, TimeUnit.SECONDS)
        .greetAll(GreetRequest.getDefaultInstance())
        .forEachRemaining(r -> greetings.add(r.getGreeting()));
    out.println("[client] greetings: " + String.join(" ", greetings));
    return greetings;
  }

  UUID id() {
    return client.id();
  }

  @Override
  public void close() {
    client.close();
  }
}
