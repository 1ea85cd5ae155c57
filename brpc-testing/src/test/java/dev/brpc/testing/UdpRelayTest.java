package dev.brpc.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.testing.UdpRelay.Direction;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The relay forwards both ways and applies each fault as documented. Every packet carries its
 * sequence number, so which ones arrived, in what order and how changed is known exactly.
 */
class UdpRelayTest {
  private final List<AutoCloseable> closeables = new ArrayList<>();
  private final ThreadLeaks threads = ThreadLeaks.snapshot();

  @AfterEach
  void tearDown() throws Exception {
    for (AutoCloseable c : closeables) {
      c.close();
    }
    threads.assertAllEnd(Duration.ofSeconds(10));
  }

  private DatagramSocket socket() throws IOException {
    DatagramSocket s = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(),
        0));
    s.setSoTimeout(10_000);
    s.setReceiveBufferSize(4 << 20);
    closeables.add(s);
    return s;
  }

  private UdpRelay relay(DatagramSocket server, long seed) throws IOException {
    UdpRelay r = UdpRelay.start((InetSocketAddress) server.getLocalSocketAddress(), seed);
    closeables.add(0, r);
    return r;
  }

  private static void send(DatagramSocket from, SocketAddress to, int seq, int size)
      throws IOException {
    byte[] b = new byte[Math.max(4, size)];
    ByteBuffer.wrap(b).putInt(seq);
    from.send(new DatagramPacket(b, b.length, to));
  }

  private static DatagramPacket receive(DatagramSocket s) throws IOException {
    DatagramPacket p = new DatagramPacket(new byte[65_535], 65_535);
    s.receive(p);
    return p;
  }

  private static int seq(DatagramPacket p) {
    return ByteBuffer.wrap(p.getData(), p.getOffset(), p.getLength()).getInt();
  }

  /** Waits until the relay has decided the fate of {@code n} client packets. */
  private static void awaitTakenIn(UdpRelay relay, long n) {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (relay.counters(Direction.TO_SERVER).packetsIn() < n) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("relay took in only "
            + relay.counters(Direction.TO_SERVER).packetsIn() + " of " + n + " packets");
      }
      Thread.onSpinWait();
    }
  }

  /** Sends {@code n} packets then a marker the faults spare; returns the sequence received. */
  private static List<Integer> sendAndCollect(UdpRelay relay, DatagramSocket client,
      DatagramSocket server, int n) throws IOException {
    return sendAndCollect(relay, client, server, n, 16);
  }

  private static List<Integer> sendAndCollect(UdpRelay relay, DatagramSocket client,
      DatagramSocket server, int n, int size) throws IOException {
    long before = relay.counters(Direction.TO_SERVER).packetsIn();
    for (int i = 0; i < n; i++) {
      send(client, relay.address(), i, size);
    }
    // The marker must meet other faults than the packets before it: switch once the relay
    // has taken them all in. It is held 200 ms so that it leaves after every one of them.
    awaitTakenIn(relay, before + n);
    Faults kept = relay.faults(Direction.TO_SERVER);
    relay.set(Direction.TO_SERVER, Faults.NONE.withDelay(Duration.ofMillis(200), Duration.ZERO));
    send(client, relay.address(), -1, 16);
    awaitTakenIn(relay, before + n + 1);
    relay.set(Direction.TO_SERVER, kept);
    List<Integer> got = new ArrayList<>();
    for (int s; (s = seq(receive(server))) != -1; ) {
      got.add(s);
    }
    return got;
  }

  @Test
  void forwardsBothWays_oneUpstreamPortPerClient_andCounts() throws Exception {
    DatagramSocket server = socket();
    UdpRelay relay = relay(server, 1);
    DatagramSocket a = socket();
    DatagramSocket b = socket();

    send(a, relay.address(), 1, 100);
    DatagramPacket fromA = receive(server);
    send(b, relay.address(), 2, 200);
    DatagramPacket fromB = receive(server);
    assertEquals(1, seq(fromA));
    assertEquals(2, seq(fromB));
    assertNotEquals(fromA.getSocketAddress(), fromB.getSocketAddress());
    assertEquals(2, relay.sessions());

    send(server, fromB.getSocketAddress(), 20, 50);
    send(server, fromA.getSocketAddress(), 10, 50);
    assertEquals(20, seq(receive(b)));
    DatagramPacket back = receive(a);
    assertEquals(10, seq(back));
    assertEquals(relay.address(), back.getSocketAddress());

    assertEquals(new UdpRelay.Counters(2, 300, 2, 300, 0, 0, 0, 0),
        relay.counters(Direction.TO_SERVER));
    assertEquals(new UdpRelay.Counters(2, 100, 2, 100, 0, 0, 0, 0),
        relay.counters(Direction.TO_CLIENT));
  }

  @Test
  void delay_holdsEveryPacketAtLeastThatLong() throws Exception {
    DatagramSocket server = socket();
    UdpRelay relay = relay(server, 1);
    relay.set(Direction.TO_SERVER, Faults.NONE.withDelay(Duration.ofMillis(50), Duration.ZERO));
    DatagramSocket client = socket();
    long start = System.nanoTime();
    send(client, relay.address(), 1, 16);
    receive(server);
    assertTrue(System.nanoTime() - start >= 50_000_000L);
  }

  @Test
  void loss_dropsAboutThatShare_andTheSameSeedDropsTheSamePackets() throws Exception {
    List<List<Integer>> runs = new ArrayList<>();
    for (long seed : new long[] {7, 7, 8}) {
      DatagramSocket server = socket();
      UdpRelay relay = relay(server, seed);
      relay.set(Faults.NONE.withLoss(0.3));
      List<Integer> got = sendAndCollect(relay, socket(), server, 2000);
      UdpRelay.Counters c = relay.counters(Direction.TO_SERVER);
      assertEquals(2000 - got.size(), c.dropped());
      assertTrue(c.dropped() > 500 && c.dropped() < 700, "dropped " + c.dropped());
      runs.add(got);
    }
    assertEquals(runs.get(0), runs.get(1));
    assertNotEquals(runs.get(0), runs.get(2));
  }

  @Test
  void burstLoss_losesPacketsInRuns() throws Exception {
    DatagramSocket server = socket();
    UdpRelay relay = relay(server, 3);
    // Bursts of 1/0.25 = 4 packets on average, all lost; long-run loss 0.05/0.3 = 17%.
    relay.set(Faults.NONE.withBurstLoss(0.05, 0.25, 1.0));
    List<Integer> got = sendAndCollect(relay, socket(), server, 4000);
    int gaps = 0;
    int lost = 4000 - got.size();
    int previous = -1;
    for (int s : got) {
      gaps += s - previous > 1 ? 1 : 0;
      previous = s;
    }
    double meanRun = (double) lost / gaps;
    assertTrue(lost > 400 && lost < 1000, "lost " + lost);
    assertTrue(meanRun > 2.5, "mean loss run " + meanRun);
  }

  @Test
  void duplicate_deliversTwice() throws Exception {
    DatagramSocket server = socket();
    UdpRelay relay = relay(server, 4);
    relay.set(Faults.NONE.withDuplicate(0.5));
    List<Integer> got = sendAndCollect(relay, socket(), server, 400);
    long dups = relay.counters(Direction.TO_SERVER).duplicated();
    assertEquals(400 + dups, got.size());
    assertTrue(dups > 150 && dups < 250, "duplicated " + dups);
    assertEquals(400, got.stream().distinct().count());
  }

  @Test
  void reorder_letsLaterPacketsOvertake() throws Exception {
    DatagramSocket server = socket();
    UdpRelay relay = relay(server, 5);
    relay.set(Faults.NONE.withReorder(0.25, Duration.ofMillis(20)));
    DatagramSocket client = socket();
    List<Integer> got = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      send(client, relay.address(), i, 16);
    }
    for (int i = 0; i < 200; i++) {
      got.add(seq(receive(server)));
    }
    assertTrue(relay.counters(Direction.TO_SERVER).reordered() > 20);
    List<Integer> sorted = new ArrayList<>(got);
    sorted.sort(null);
    assertEquals(200, sorted.stream().distinct().count());
    assertNotEquals(sorted, got);
  }

  @Test
  void corrupt_flipsExactlyOneBit() throws Exception {
    DatagramSocket server = socket();
    UdpRelay relay = relay(server, 6);
    relay.set(Faults.NONE.withCorrupt(1.0));
    DatagramSocket client = socket();
    byte[] sent = new byte[64];
    Arrays.fill(sent, (byte) 0x5a);
    for (int i = 0; i < 50; i++) {
      client.send(new DatagramPacket(sent, sent.length, relay.address()));
      DatagramPacket p = receive(server);
      byte[] got = Arrays.copyOf(p.getData(), p.getLength());
      int flipped = 0;
      for (int j = 0; j < sent.length; j++) {
        flipped += Integer.bitCount((sent[j] ^ got[j]) & 0xff);
      }
      assertEquals(1, flipped);
    }
    assertEquals(50, relay.counters(Direction.TO_SERVER).corrupted());
  }

  @Test
  void blackhole_dropsEverythingUntilLifted() throws Exception {
    DatagramSocket server = socket();
    UdpRelay relay = relay(server, 1);
    DatagramSocket client = socket();
    relay.blackhole(true);
    for (int i = 0; i < 10; i++) {
      send(client, relay.address(), i, 16);
    }
    awaitTakenIn(relay, 10);
    relay.blackhole(false);
    send(client, relay.address(), 99, 16);
    assertEquals(99, seq(receive(server)), "a blackholed packet got through");
    assertEquals(10, relay.counters(Direction.TO_SERVER).dropped());
  }

  @Test
  void rate_spacesPacketsOut_andTailDropsBeyondTheQueue() throws Exception {
    DatagramSocket server = socket();
    UdpRelay relay = relay(server, 1);
    // 20 packets of 1000 bytes at 200 kB/s: the last leaves 100 ms after the first arrived.
    relay.set(Faults.NONE.withRate(200_000, Duration.ofSeconds(1)));
    DatagramSocket client = socket();
    long start = System.nanoTime();
    for (int i = 0; i < 20; i++) {
      send(client, relay.address(), i, 1000);
    }
    for (int i = 0; i < 20; i++) {
      assertEquals(i, seq(receive(server)));
    }
    assertTrue(System.nanoTime() - start >= 95_000_000L);

    // A 10 ms queue holds 2 packets' worth: most of a burst of 200 is dropped.
    relay.set(Faults.NONE.withRate(200_000, Duration.ofMillis(10)));
    List<Integer> got = sendAndCollect(relay, client, server, 200, 1000);
    assertTrue(got.size() < 100, got.size() + " packets passed");
    assertEquals(200 - got.size(), relay.counters(Direction.TO_SERVER).dropped());
  }

  @Test
  void rebind_movesTheClientToANewPort_andRepliesToTheOldOneAreLost() throws Exception {
    DatagramSocket server = socket();
    UdpRelay relay = relay(server, 1);
    DatagramSocket client = socket();
    send(client, relay.address(), 1, 16);
    SocketAddress before = receive(server).getSocketAddress();

    relay.rebind();
    send(server, before, 2, 16); // to the old port: lost
    send(client, relay.address(), 3, 16);
    DatagramPacket p = receive(server);
    assertEquals(3, seq(p));
    SocketAddress after = p.getSocketAddress();
    assertNotEquals(before, after);
    send(server, after, 4, 16);
    assertEquals(4, seq(receive(client)));
  }

  @Test
  void invalidFaults_areRejected() {
    assertThrows(IllegalArgumentException.class, () -> Faults.NONE.withLoss(1.5));
    assertThrows(IllegalArgumentException.class, () -> Faults.NONE.withLoss(Double.NaN));
    assertThrows(IllegalArgumentException.class,
        () -> Faults.NONE.withDelay(Duration.ofMillis(-1), Duration.ZERO));
    assertThrows(IllegalArgumentException.class,
        () -> Faults.NONE.withRate(-1, Duration.ZERO));
  }
}
