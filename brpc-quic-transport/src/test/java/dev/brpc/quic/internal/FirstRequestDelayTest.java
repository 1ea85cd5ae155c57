package dev.brpc.quic.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.brpc.quic.PeerConnection;
import dev.brpc.quic.QuicChannelBuilder;
import dev.brpc.quic.QuicConnectionListener;
import dev.brpc.quic.QuicServerBuilder;
import dev.brpc.quic.SelfSignedCertificate;
import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import dev.brpc.fixtures.SevereLogs;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The first request on a fresh connection (DESIGN.md section 7). kwik's client coalesced a
 * Handshake ACK with its first 1-RTT packet (our SETTINGS) in about one connection in eight;
 * kwik's server, which has discarded its handshake keys by then, drops such a datagram whole,
 * so SETTINGS, and with it the connection setup and any call started before it was done,
 * waited 30-130 ms for a retransmission.
 * {@code kwik.HandshakeSplittingSocket} has the mechanism and the fix;
 * {@code kwik.HandshakeSplittingSocketTest} shows on bare kwik that the server drops the packet
 * behind such a Handshake packet, deterministically.
 *
 * <p>Here the client's datagrams pass a forwarder on loopback that counts the ones that start
 * with a Handshake packet and carry more packets after it: kwik's server drops such a datagram
 * whole unless the Handshake packet is the client's Finished itself. The assertion is on that count, not on a timing
 * (speed is measured in the benchmarks); without the fix it failed in 7 runs of 8 (0 to 5 such
 * datagrams in 30 connections). The latencies are printed for information. The
 * client's count of lost packets is printed too but not asserted: kwik 0.10.9 also declares
 * packets lost that were not (an ACK that arrives between {@code socket.send} and
 * {@code recoveryManager.packetSent} in {@code SenderImpl.send}, lines 435-442, finds no packet
 * to acknowledge), in about one connection in twenty on a busy machine.
 */
class FirstRequestDelayTest {
  private static final SelfSignedCertificate CERT = SelfSignedCertificate.generate("localhost");
  /** Connections made first and not measured: the JIT makes the first few slow. */
  private static final int WARMUP = 5;
  private static final int CONNECTIONS = 30;

  private final SevereLogs severeLogs = SevereLogs.start();
  private Server server;
  private Forwarder forwarder;

  @BeforeEach
  void setUp() throws Exception {
    server = QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .useTransportSecurity(CERT)
        .addService(new EchoGrpc.EchoImplBase() {
          @Override
          public void unary(Msg request, StreamObserver<Msg> response) {
            response.onNext(request);
            response.onCompleted();
          }
        })
        .build().start();
    forwarder = new Forwarder(new InetSocketAddress("127.0.0.1", server.getPort()));
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      server.shutdownNow();
      server.awaitTermination(10, TimeUnit.SECONDS);
    } finally {
      forwarder.close();
    }
    severeLogs.assertNone();
  }

  @Test
  void freshConnections_sendNoHandshakePacketCoalescedWithLaterOnes() throws Exception {
    long[] ready = new long[CONNECTIONS];
    long[] first = new long[CONNECTIONS];
    long[] second = new long[CONNECTIONS];
    int lossy = 0;
    for (int i = -WARMUP; i < CONNECTIONS; i++) {
      if (i == 0) {
        forwarder.coalesced.clear();
      }
      LinkedBlockingQueue<PeerConnection> connected = new LinkedBlockingQueue<>();
      ManagedChannel channel = QuicChannelBuilder.forAddress("localhost", forwarder.port())
          .trustCertificate(CERT.certificate())
          .connectionListener(new QuicConnectionListener() {
            @Override
            public void connected(PeerConnection connection) {
              connected.add(connection);
            }
          })
          .build();
      try {
        EchoGrpc.EchoBlockingStub stub = EchoGrpc.newBlockingStub(channel)
            .withDeadlineAfter(20, TimeUnit.SECONDS);
        long t0 = System.nanoTime();
        awaitReady(channel);
        long t1 = System.nanoTime();
        stub.unary(Msg.newBuilder().setText("first").build());
        long t2 = System.nanoTime();
        stub.unary(Msg.newBuilder().setText("second").build());
        long t3 = System.nanoTime();
        PeerConnection peer = connected.poll(10, TimeUnit.SECONDS);
        assertNotNull(peer, "no connected() for a READY channel");
        if (i >= 0) {
          ready[i] = t1 - t0;
          first[i] = t2 - t1;
          second[i] = t3 - t2;
          Connection c = ((PeerConnectionImpl) peer).address().connection;
          lossy += c.engine.stats().packetsLost() > 0 ? 1 : 0;
        }
      } finally {
        channel.shutdownNow();
        channel.awaitTermination(10, TimeUnit.SECONDS);
      }
    }
    System.out.printf("FirstRequestDelayTest (informal; %d fresh connections over a loopback"
        + " forwarder):%n  dial to READY: %s%n  first call:    %s%n  second call:   %s%n"
        + "  connections whose client declared packets lost: %d%n", CONNECTIONS, stats(ready),
        stats(first), stats(second), lossy);
    assertEquals(List.of(), forwarder.coalesced,
        "datagrams (their sizes) that started with a Handshake packet and carried more");
  }

  private static void awaitReady(ManagedChannel channel) throws InterruptedException {
    while (true) {
      ConnectivityState s = channel.getState(true);
      if (s == ConnectivityState.READY) {
        return;
      }
      CountDownLatch changed = new CountDownLatch(1);
      channel.notifyWhenStateChanged(s, changed::countDown);
      if (!changed.await(20, TimeUnit.SECONDS)) {
        throw new AssertionError("channel stuck in " + s);
      }
    }
  }

  private static String stats(long[] nanos) {
    long[] s = nanos.clone();
    Arrays.sort(s);
    return String.format("median %6.2f ms, p90 %6.2f ms, max %6.2f ms", s[s.length / 2] / 1e6,
        s[(int) Math.ceil(s.length * 0.9) - 1] / 1e6, s[s.length - 1] / 1e6);
  }

  /**
   * Forwards datagrams between clients and a server on loopback, from one upstream socket per
   * client address, and notes the client datagrams that start with a Handshake packet followed
   * by more. One thread reads the clients, one per client reads the server.
   */
  private static final class Forwarder {
    private final InetSocketAddress server;
    private final DatagramSocket front;
    private final Map<SocketAddress, DatagramSocket> upstreams = new ConcurrentHashMap<>();
    private final List<Thread> threads = new CopyOnWriteArrayList<>();
    /** The sizes of the client datagrams that coalesced a Handshake packet with more. */
    final List<Integer> coalesced = new CopyOnWriteArrayList<>();
    private volatile boolean closed;

    Forwarder(InetSocketAddress server) throws IOException {
      this.server = server;
      this.front = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
      start("forwarder-to-server", this::toServer);
    }

    int port() {
      return front.getLocalPort();
    }

    private void start(String name, Runnable loop) {
      Thread t = new Thread(loop, name);
      t.setDaemon(true);
      threads.add(t);
      t.start();
    }

    private void toServer() {
      DatagramPacket p = new DatagramPacket(new byte[65_536], 65_536);
      while (!closed) {
        try {
          p.setLength(65_536);
          front.receive(p);
          int n = dev.brpc.quic.engine.QuicPackets.handshakePacketLength(
              p.getData(), p.getOffset(), p.getLength());
          if (n > 0 && n < p.getLength()) {
            coalesced.add(p.getLength());
          }
          SocketAddress client = p.getSocketAddress();
          DatagramSocket up = upstreams.get(client);
          if (up == null) {
            DatagramSocket s = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
            upstreams.put(client, s);
            up = s;
            start("forwarder-to-client", () -> toClient(s, client));
          }
          up.send(new DatagramPacket(p.getData(), p.getOffset(), p.getLength(), server));
        } catch (IOException e) {
          if (!closed) {
            throw new java.io.UncheckedIOException(e);
          }
        }
      }
    }

    private void toClient(DatagramSocket up, SocketAddress client) {
      DatagramPacket p = new DatagramPacket(new byte[65_536], 65_536);
      while (!closed) {
        try {
          p.setLength(65_536);
          up.receive(p);
          front.send(new DatagramPacket(p.getData(), p.getOffset(), p.getLength(), client));
        } catch (IOException e) {
          if (!closed) {
            throw new java.io.UncheckedIOException(e);
          }
        }
      }
    }

    void close() throws InterruptedException {
      closed = true;
      front.close();
      upstreams.values().forEach(DatagramSocket::close);
      for (Thread t : threads) {
        t.join(10_000);
      }
    }
  }
}
