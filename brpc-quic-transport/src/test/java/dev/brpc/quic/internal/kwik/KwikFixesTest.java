package dev.brpc.quic.internal.kwik;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.quic.engine.QuicPackets;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Field;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import tech.kwik.core.cid.ConnectionIdManager;
import tech.kwik.core.crypto.ConnectionSecrets;
import tech.kwik.core.frame.AckFrame;
import tech.kwik.core.frame.ConnectionCloseFrame;
import tech.kwik.core.frame.CryptoFrame;
import tech.kwik.core.frame.DatagramFrame;
import tech.kwik.core.frame.NewConnectionIdFrame;
import tech.kwik.core.frame.NewTokenFrame;
import tech.kwik.core.frame.StreamFrame;
import tech.kwik.core.impl.InvalidPacketException;
import tech.kwik.core.impl.QuicConnectionImpl;
import tech.kwik.core.impl.Role;
import tech.kwik.core.impl.TransportError;
import tech.kwik.core.impl.Version;
import tech.kwik.core.impl.VersionHolder;
import tech.kwik.core.log.NullLogger;
import tech.kwik.core.packet.RetryPacket;
import tech.kwik.core.packet.ServerRolePacketParser;
import tech.kwik.core.send.Sender;
import tech.kwik.core.server.ServerConnector;
import tech.kwik.core.stream.ReceiveBufferImpl;
import tech.kwik.core.stream.StreamElement;

/**
 * kwik's published fixes after 0.10.9 (RELIABILITY.md, "kwik's fixes after 0.10.9"): for each
 * item there, whether the kwik brpc-java runs is exposed, and where brpc guards it, that the
 * guard works. A test named {@code ..._exposed} asserts kwik 0.10.9's flaw; if it fails, the
 * kwik in use has the fix, and that line of RELIABILITY.md (and any guard) can go.
 *
 * <p>What bare kwik does without brpc's guards runs in a JVM of its own ({@link KwikExposure}):
 * this JVM has brpc's kwik engine loaded, guards installed.
 */
class KwikFixesTest {
  private static final NullLogger LOG = new NullLogger();
  private static final int MIB = 1 << 20;

  /**
   * Item 1 (upstream c152866b): five frame types allocate the length their peer declares before
   * they check it against the packet. Every frame below declares 1 MiB and carries none; each
   * parse allocates the MiB, then fails. A declared 2 GiB is an OutOfMemoryError on a smaller
   * heap, from one 1,200-byte Initial packet, before any authentication. Not guardable from
   * outside kwik: the frames are encrypted (RELIABILITY.md says what to do instead).
   */
  @Test
  void framesAllocateTheLengthTheirPeerDeclares_exposed() {
    List<FrameParse> frames = List.of(
        new FrameParse("CRYPTO", "0600" + "80100000", b -> new CryptoFrame().parse(b, LOG)),
        new FrameParse("STREAM", "0a00" + "80100000", b -> new StreamFrame().parse(b, LOG)),
        new FrameParse("NEW_TOKEN", "07" + "80100000", b -> new NewTokenFrame().parse(b, LOG)),
        new FrameParse("DATAGRAM", "31" + "80100000", b -> new DatagramFrame().parse(b, LOG)),
        new FrameParse("CONNECTION_CLOSE", "1c0000" + "80100000",
            b -> new ConnectionCloseFrame(Version.getDefault()).parse(b, LOG)));
    for (FrameParse f : frames) {
      ByteBuffer frame = ByteBuffer.wrap(HexFormat.of().parseHex(f.hex));
      long before = allocatedBytes();
      assertThrows(Exception.class, () -> f.parse.parse(frame), f.name);
      long allocated = allocatedBytes() - before;
      assertTrue(allocated >= MIB, f.name + " allocated only " + allocated + " bytes for "
          + frame.capacity() + " bytes of frame: this kwik checks the length first");
    }
  }

  /**
   * Item 3 (upstream a68f1c72): kwik 0.10.9 draws stateless reset tokens from a
   * java.util.Random, so one token gives away the next. Bare kwik, in a JVM of its own.
   */
  @Test
  void resetTokensFollowFromEachOther_exposed() throws Exception {
    assertEquals("predicted=true", runAlone("tokens").output.strip());
  }

  /** The guard: with brpc's kwik engine loaded, tokens come from a SecureRandom. */
  @Test
  void resetTokens_withBrpcsEngineLoaded_areUnpredictable() throws Exception {
    assertEquals("kwik", new KwikEngineProvider().engine().name()); // constructs the engine
    Field random = NewConnectionIdFrame.class.getDeclaredField("random");
    random.setAccessible(true);
    assertInstanceOf(SecureRandom.class, random.get(null));
    for (int i = 0; i < 20; i++) {
      byte[] first = new NewConnectionIdFrame(Version.getDefault(), 1, 0, new byte[8])
          .getStatelessResetToken();
      byte[] second = new NewConnectionIdFrame(Version.getDefault(), 2, 0, new byte[8])
          .getStatelessResetToken();
      assertFalse(KwikExposure.predictsNext(first, second));
    }
  }

  /**
   * Item 2 (upstream 4031b6ed): kwik 0.10.9's server exits the JVM (status 9) when its
   * receiver thread fails. Bare kwik, in a JVM of its own.
   */
  @Test
  void aFailingServerSocket_exitsTheJvm_exposed() throws Exception {
    Child child = runAlone("exit");
    assertEquals(9, child.exitCode, child.output);
  }

  /**
   * The guard: with {@link KwikHardening#keepJvmUp}, as brpc's listener installs it, the same
   * failure reaches our handler, and this JVM goes on.
   */
  @Test
  void aFailingServerSocket_withTheGuard_isReportedAndTheJvmStaysUp() throws Exception {
    DatagramSocket socket = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
    ServerConnector server = KwikExposure.connector(socket);
    CompletableFuture<Throwable> failed = new CompletableFuture<>();
    KwikHardening.keepJvmUp(server, failed::complete);
    server.start();
    try {
      socket.close();
      assertInstanceOf(IOException.class, failed.get(20, TimeUnit.SECONDS));
    } finally {
      server.close();
    }
  }

  /**
   * Item 4 (upstream 327e5497): with Retry required, one malformed datagram that looks like an
   * Initial makes kwik 0.10.9's parser throw a TransportError, which closes the connection it
   * was addressed to. brpc never requires Retry ({@code KwikListener}); without it the same
   * bytes are only an invalid packet, dropped.
   */
  @Test
  void malformedInitialWithRetryRequired_closes_exposed_andBrpcsConfigurationDropsIt() {
    byte[] junk = new byte[1200];
    Arrays.fill(junk, (byte) 0xc8);
    assertThrows(TransportError.class, () -> serverParser(true).parsePacket(ByteBuffer.wrap(junk)));
    assertThrows(InvalidPacketException.class,
        () -> serverParser(false).parsePacket(ByteBuffer.wrap(junk)));
  }

  /**
   * Item 5 (upstream f0fb7b6b): a Retry whose connection id length byte is 0x80 or more throws
   * NegativeArraySizeException in kwik 0.10.9, aborting the dial; a forged one does it.
   */
  @Test
  void retryWithAnOversizedConnectionIdLength_throws_exposed() {
    byte[] retry = HexFormat.of().parseHex("f0" + "00000001" + "80" + "00".repeat(16) + "00");
    assertThrows(NegativeArraySizeException.class, () -> new RetryPacket(Version.getDefault())
        .parse(ByteBuffer.wrap(retry), null, 0, LOG, 0));
  }

  /** The guard: brpc's dialer socket drops such a datagram and hands kwik the next one. */
  @Test
  void retryWithAnOversizedConnectionIdLength_isDroppedByTheDialerSocket() throws Exception {
    byte[] forged = HexFormat.of().parseHex("f0" + "00000001" + "80" + "00".repeat(40));
    byte[] next = "the next datagram".getBytes(StandardCharsets.US_ASCII);
    try (HandshakeSplittingSocket dialer = new HandshakeSplittingSocket();
        DatagramSocket peer = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
      InetSocketAddress to = new InetSocketAddress(InetAddress.getLoopbackAddress(),
          dialer.getLocalPort());
      peer.send(new DatagramPacket(forged, forged.length, to));
      peer.send(new DatagramPacket(next, next.length, to));
      dialer.setSoTimeout(20_000);
      DatagramPacket p = new DatagramPacket(new byte[1500], 1500);
      dialer.receive(p);
      assertEquals("the next datagram", new String(p.getData(), 0, p.getLength(),
          StandardCharsets.US_ASCII));
    }
  }

  @Test
  void invalidConnectionIdLengths_areRecognised() {
    HexFormat hex = HexFormat.of();
    byte[] ok = hex.parseHex("c0" + "00000001" + "08" + "11".repeat(8) + "14" + "22".repeat(20)
        + "00");
    assertFalse(QuicPackets.hasInvalidConnectionIdLength(ok, 0, ok.length));
    byte[] dcid21 = hex.parseHex("c0" + "00000001" + "15" + "11".repeat(30));
    assertTrue(QuicPackets.hasInvalidConnectionIdLength(dcid21, 0, dcid21.length));
    byte[] scid21 = hex.parseHex("e0" + "6b3343cf" + "00" + "15" + "11".repeat(30));
    assertTrue(QuicPackets.hasInvalidConnectionIdLength(scid21, 0, scid21.length));
    byte[] truncated = hex.parseHex("c0" + "00000001" + "08" + "11".repeat(3));
    assertTrue(QuicPackets.hasInvalidConnectionIdLength(truncated, 0, truncated.length));
    byte[] otherVersion = hex.parseHex("c0" + "ff00001d" + "ff" + "11".repeat(8));
    assertFalse(QuicPackets.hasInvalidConnectionIdLength(otherVersion, 0, otherVersion.length));
    byte[] shortHeader = hex.parseHex("40" + "ff".repeat(30));
    assertFalse(QuicPackets.hasInvalidConnectionIdLength(shortHeader, 0, shortHeader.length));
  }

  /**
   * Not fixed upstream either (RELIABILITY.md, item R1): kwik walks an ACK frame's ranges one
   * packet number at a time, and does not reject acknowledgements of packets it never sent. A
   * 14-byte frame makes it walk 16.7 million numbers; a few such frames per packet keep a
   * connection's thread busy for seconds. Counted here, not timed.
   */
  @Test
  void ackRangesAreWalkedNumberByNumber_exposed() throws Exception {
    byte[] ack = HexFormat.of().parseHex("02" + "c0000000ffffffff" + "00" + "00" + "80ffffff");
    AckFrame frame = new AckFrame().parse(ByteBuffer.wrap(ack), LOG);
    assertEquals(0xffffff + 1, frame.getAckedPacketNumbers(0).count());
  }

  /**
   * Item 7 (upstream 90bf12fd): a read racing a discard (a reset on another thread) throws
   * NoSuchElementException, not an IOException. Here the discard runs inside the read, as the
   * race can order it. brpc's reads catch it and report the reset ({@code
   * KwikReceiveHook.Hooked.read}).
   */
  @Test
  void aReadRacingADiscard_throwsAnUncheckedException_exposed() {
    ReceiveBufferImpl buffer = new ReceiveBufferImpl();
    boolean[] armed = {false};
    buffer.add(new StreamElement() {
      @Override public long getOffset() {
        return 0;
      }

      @Override public int getLength() {
        return 100;
      }

      @Override public byte[] getStreamData() {
        if (armed[0]) {
          armed[0] = false;
          buffer.discardAllData();
        }
        return new byte[100];
      }

      @Override public long getUpToOffset() {
        return 100;
      }

      @Override public boolean isFinal() {
        return false;
      }

      @Override public int compareTo(StreamElement o) {
        return Long.compare(getOffset(), o.getOffset());
      }
    });
    armed[0] = true;
    assertThrows(java.util.NoSuchElementException.class,
        () -> buffer.read(ByteBuffer.allocate(200)));
  }

  /**
   * Item 20 (upstream 10ed65e5): after a discard, kwik still reports the discarded bytes as
   * available. brpc uses the figure only to size a read, which then reports the reset.
   */
  @Test
  void availableAfterADiscard_isStale_exposed() {
    ReceiveBufferImpl buffer = new ReceiveBufferImpl();
    buffer.add(new StreamFrame(0, new byte[10], false));
    buffer.discardAllData();
    assertEquals(10, buffer.bytesAvailable());
  }

  /**
   * Item 13 (upstream d7585d67): a NEW_CONNECTION_ID whose Retire Prior To is smaller than an
   * earlier one's lowers kwik's threshold, and a reordered older frame then closes the
   * connection with CONNECTION_ID_LIMIT_ERROR (0x09). Not guardable (encrypted frames).
   */
  @Test
  void aSmallerRetirePriorTo_thenAReorderedFrame_closesTheConnection_exposed() {
    List<Integer> closes = new java.util.ArrayList<>();
    ConnectionIdManager cids = new ConnectionIdManager(8, 2, idleSender(),
        (code, reason) -> closes.add(code), LOG);
    Version v = Version.getDefault();
    cids.process(new NewConnectionIdFrame(v, 3, 3, HexFormat.of().parseHex("0303030303030303")));
    cids.process(new NewConnectionIdFrame(v, 4, 1, HexFormat.of().parseHex("0404040404040404")));
    cids.process(new NewConnectionIdFrame(v, 2, 0, HexFormat.of().parseHex("0202020202020202")));
    assertEquals(List.of(0x09), closes);
  }

  /**
   * Not fixed upstream either (item R2): kwik keeps every retired peer connection id, and
   * scans them all for each new one. A peer that sends NEW_CONNECTION_ID frames, each retiring
   * the one before, grows that map without bound at quadratic CPU cost.
   */
  @Test
  void retiredPeerConnectionIdsAreNeverForgotten_exposed() {
    ConnectionIdManager cids = new ConnectionIdManager(8, 2, idleSender(), (code, reason) -> { },
        LOG);
    for (int n = 1; n <= 2000; n++) {
      byte[] cid = new byte[8];
      ByteBuffer.wrap(cid).putInt(n);
      cids.process(new NewConnectionIdFrame(Version.getDefault(), n, n, cid));
    }
    assertEquals(2001, cids.getAllPeerConnectionIds().size());
  }

  /** A kwik Sender that sends nothing, for the connection id manager alone. */
  private static Sender idleSender() {
    return (Sender) java.lang.reflect.Proxy.newProxyInstance(Sender.class.getClassLoader(),
        new Class<?>[] {Sender.class}, (proxy, method, args) -> null);
  }

  private static ServerRolePacketParser serverParser(boolean retryRequired) {
    VersionHolder v1 = VersionHolder.with(Version.QUIC_version_1);
    return new ServerRolePacketParser(new ConnectionSecrets(v1, Role.Server, null, LOG), v1, 0,
        retryRequired, null, () -> QuicConnectionImpl.VersionNegotiationStatus.NotStarted, LOG);
  }

  private static long allocatedBytes() {
    return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean())
        .getCurrentThreadAllocatedBytes();
  }

  private record FrameParse(String name, String hex, Parse parse) {}

  private interface Parse {
    void parse(ByteBuffer frame) throws Exception;
  }

  private record Child(int exitCode, String output) {}

  /** Runs {@link KwikExposure} in a JVM of its own, on this test's class path. */
  private static Child runAlone(String mode) throws Exception {
    String java = ProcessHandle.current().info().command()
        .orElse(System.getProperty("java.home") + "/bin/java");
    Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
        KwikExposure.class.getName(), mode).redirectErrorStream(true).start();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    p.getInputStream().transferTo(out); // until the child ends: it bounds itself (20 s)
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child JVM did not end");
    return new Child(p.exitValue(), out.toString(StandardCharsets.UTF_8));
  }
}
