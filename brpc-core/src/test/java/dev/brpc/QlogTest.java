package dev.brpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.test.Req;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * qlog, off by default and switched on per builder: the native engine writes a file per
 * connection on each side; kwik writes none (it has no qlog writer) and the calls still work.
 */
@org.junit.jupiter.api.extension.ExtendWith(dev.brpc.fixtures.ThreadDumpOnFailure.class)
class QlogTest {
  private static final String ENGINE = System.getProperty("brpc.quic.engine", "kwik");
  private Fixture f;

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  @Test
  void qlogDirectory_onEachSide_getsAFilePerConnection(@TempDir Path dir) throws Exception {
    Path serverDir = dir.resolve("server");
    Path clientDir = dir.resolve("client");
    f = new Fixture(b -> b.qlogDirectory(serverDir));
    BrpcClient client = f.connect(f.clientBuilder(new Fixture.Agent("ada"))
        .qlogDirectory(clientDir));
    // Enough traffic to fill quiche's 8 KiB file buffer at least once, whenever Netty frees the
    // connection (which flushes the rest).
    for (int i = 0; i < 20; i++) {
      assertEquals("ada", Fixture.hub(client).call(Req.newBuilder().setText("name").build())
          .getText());
    }
    f.close();
    f = null;

    if (ENGINE.equals("native")) {
      for (Path side : List.of(serverDir, clientDir)) {
        List<Path> files = qlogs(side);
        assertEquals(1, files.size(), side + ": " + files);
        String qlog = Files.readString(files.get(0));
        // JSON-SEQ (RFC 7464): a header record, then one record per event.
        assertTrue(qlog.contains("\"serialization_format\":\"JSON-SEQ\"")
            && qlog.contains("packet_sent") && qlog.contains("packet_received"),
            side + ": " + qlog.substring(Math.max(0, qlog.length() - 1500)));
      }
    } else {
      assertTrue(qlogs(serverDir).isEmpty() && qlogs(clientDir).isEmpty());
    }
  }

  @Test
  void withoutTheSetting_nothingIsWritten(@TempDir Path dir) throws Exception {
    f = new Fixture();
    BrpcClient client = f.connect("ada");
    assertEquals("ada", Fixture.hub(client).call(Req.newBuilder().setText("name").build())
        .getText());
    client.shutdown().awaitTermination(20, TimeUnit.SECONDS);
    try (Stream<Path> files = Files.list(dir)) {
      assertEquals(0, files.count());
    }
  }

  private static List<Path> qlogs(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(p -> p.toString().endsWith(".qlog")).collect(Collectors.toList());
    }
  }
}
