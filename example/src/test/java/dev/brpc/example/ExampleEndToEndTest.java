package dev.brpc.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The example's server and client, in this JVM: the greeting and the scheduled roll call. */
class ExampleEndToEndTest {
  @TempDir Path certs;

  @Test
  void client_isGreetedWithTheNameTheServerGotBack_andAnsweredTheRollCall() throws Exception {
    ByteArrayOutputStream serverOut = new ByteArrayOutputStream();
    ByteArrayOutputStream clientOut = new ByteArrayOutputStream();
    try (ExampleServer server = ExampleServer.start(new InetSocketAddress("127.0.0.1", 0), null,
            null, certs, Duration.ofMillis(200), print(serverOut));
        ExampleClient client = ExampleClient.connect("localhost", server.port(),
            certs.resolve("cert.pem").toFile(), List.of("Grace", "Amazing Grace"),
            print(clientOut))) {
      assertTrue(Files.exists(certs.resolve("key.pem")));
      assertEquals("Hello, Grace!", client.greet());
      assertEquals(List.of("Hello, Grace!", "Hello, Amazing Grace!"), client.greetAll());
      assertTrue(server.awaitRollCallAnswer(10, TimeUnit.SECONDS), "no roll call answered");
      String server1 = serverOut.toString(StandardCharsets.UTF_8);
      assertTrue(server1.contains("roll call: client " + client.id() + " is Grace"), server1);
      assertTrue(server1.contains("the client says its name is Grace"), server1);
      assertTrue(clientOut.toString(StandardCharsets.UTF_8)
          .contains("the server asks for our name: answering Grace"));
    }
  }

  private static PrintStream print(ByteArrayOutputStream buffer) {
    return new PrintStream(buffer, true, StandardCharsets.UTF_8);
  }
}
