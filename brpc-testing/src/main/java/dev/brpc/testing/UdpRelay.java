package dev.brpc.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.DatagramChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.DelayQueue;
import java.util.concurrent.Delayed;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A user-space UDP relay on 127.0.0.1 that injects network faults between a client and a
 * server, for tests on machines without {@code tc netem}. Clients send to {@link #address()};
 * the relay forwards to the server from one upstream socket per client address, as a NAT
 * does, and forwards the server's answers back.
 *
 * <p>What happens to each packet is decided by the {@link Faults} set for its {@link
 * Direction}, which tests may change at any time ({@link #set}); the decisions come from a
 * {@link Random} seeded per direction, so a run with the same seed and the same packet sequence
 * makes the same decisions. {@link #rebind()} moves every client to a new upstream port, as a
 * NAT rebinding does. {@link #counters} counts packets and bytes per direction.
 *
 * <p>Threading: one thread ({@code udp-relay-receive}) reads every socket and decides each
 * packet's fate; one ({@code udp-relay-send}) sends packets when they are due. Every public
 * method is thread-safe.
 */
public final class UdpRelay implements AutoCloseable {
  /** Which way a packet travels. */
  public enum Direction {
    TO_SERVER,
    TO_CLIENT
  }

  /** A snapshot of one direction's counters. */
  public record Counters(long packetsIn, long bytesIn, long packetsOut, long bytesOut,
      long dropped, long duplicated, long corrupted, long reordered) {}

  private static final int MAX_DATAGRAM = 65_535;
  private static final int SOCKET_BUFFER = 4 << 20;

  private final InetSocketAddress server;
  private final DatagramChannel front;
  private final Selector selector;
  private final Map<InetSocketAddress, Session> sessions = new ConcurrentHashMap<>();
  private final ConcurrentLinkedQueue<Runnable> selectorTasks = new ConcurrentLinkedQueue<>();
  private final DelayQueue<Packet> due = new DelayQueue<>();
  private final Link toServer;
  private final Link toClient;
  private final AtomicLong sequence = new AtomicLong();
  private final Thread receiver;
  private final Thread sender;
  private volatile boolean closed;

  private UdpRelay(InetSocketAddress server, long seed) throws IOException {
    this.server = server;
    this.toServer = new Link(new Random(seed));
    this.toClient = new Link(new Random(seed * 31 + 17));
    this.selector = Selector.open();
    this.front = openChannel();
    front.register(selector, SelectionKey.OP_READ, null);
    receiver = new Thread(this::receiveLoop, "udp-relay-receive");
    sender = new Thread(this::sendLoop, "udp-relay-send");
    receiver.setDaemon(true);
    sender.setDaemon(true);
    receiver.start();
    sender.start();
  }

  /**
   * Starts a relay on 127.0.0.1 (ephemeral port) in front of {@code server}, with no fault.
   *
   * @param seed seeds the fault decisions, so a failing run can be repeated
   */
  public static UdpRelay start(InetSocketAddress server, long seed) throws IOException {
    return new UdpRelay(server, seed);
  }

  /** Where clients send: the relay's front socket. */
  public InetSocketAddress address() {
    try {
      return (InetSocketAddress) front.getLocalAddress();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The port clients dial. */
  public int port() {
    return address().getPort();
  }

  /** Applies {@code faults} to both directions, from the next packet on. */
  public void set(Faults faults) {
    set(Direction.TO_SERVER, faults);
    set(Direction.TO_CLIENT, faults);
  }

  /** Applies {@code faults} to one direction, from the next packet on. */
  public void set(Direction direction, Faults faults) {
    link(direction).faults = faults;
  }

  public Faults faults(Direction direction) {
    return link(direction).faults;
  }

  /** Drops every packet, both ways, while {@code on}; other faults are kept. */
  public void blackhole(boolean on) {
    for (Direction d : Direction.values()) {
      set(d, faults(d).withBlackhole(on));
    }
  }

  public Counters counters(Direction direction) {
    Link l = link(direction);
    return new Counters(l.packetsIn.get(), l.bytesIn.get(), l.packetsOut.get(),
        l.bytesOut.get(), l.dropped.get(), l.duplicated.get(), l.corrupted.get(),
        l.reordered.get());
  }

  /** How many client addresses the relay has seen. */
  public int sessions() {
    return sessions.size();
  }

  /**
   * Moves every client to a new upstream socket (a new source port, as the server sees it) and
   * closes the old one, so the server's packets to the old port are lost, as after a NAT
   * rebinding. Returns once the new sockets are in use.
   */
  public void rebind() throws InterruptedException {
    CountDownLatch done = new CountDownLatch(1);
    selectorTasks.add(() -> {
      try {
        for (Session s : sessions.values()) {
          DatagramChannel old = s.upstream;
          s.upstream = openChannel();
          s.upstream.register(selector, SelectionKey.OP_READ, s);
          old.close();
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      } finally {
        done.countDown();
      }
    });
    selector.wakeup();
    if (!done.await(10, TimeUnit.SECONDS)) {
      throw new IllegalStateException("relay did not rebind");
    }
  }

  /** Stops the relay and closes its sockets; packets still queued are dropped. */
  @Override
  public void close() throws InterruptedException {
    closed = true;
    selector.wakeup();
    sender.interrupt();
    receiver.join(10_000);
    sender.join(10_000);
    try {
      front.close();
      for (Session s : sessions.values()) {
        s.upstream.close();
      }
      selector.close();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private Link link(Direction direction) {
    return direction == Direction.TO_SERVER ? toServer : toClient;
  }

  private static DatagramChannel openChannel() throws IOException {
    DatagramChannel c = DatagramChannel.open();
    c.setOption(StandardSocketOptions.SO_RCVBUF, SOCKET_BUFFER);
    c.setOption(StandardSocketOptions.SO_SNDBUF, SOCKET_BUFFER);
    c.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
    c.configureBlocking(false);
    return c;
  }

  private void receiveLoop() {
    ByteBuffer buf = ByteBuffer.allocateDirect(MAX_DATAGRAM);
    try {
      while (!closed) {
        selector.select();
        Runnable task;
        while ((task = selectorTasks.poll()) != null) {
          task.run();
        }
        for (SelectionKey key : selector.selectedKeys()) {
          if (!key.isValid()) {
            continue;
          }
          DatagramChannel channel = (DatagramChannel) key.channel();
          Session session = (Session) key.attachment();
          InetSocketAddress from;
          while ((from = receive(channel, buf)) != null) {
            buf.flip();
            byte[] data = new byte[buf.remaining()];
            buf.get(data);
            if (session == null) {
              Session s = sessions.computeIfAbsent(from, this::newSession);
              toServer.admit(data, s, this);
            } else if (channel == session.upstream) {
              toClient.admit(data, session, this);
            }
          }
        }
        selector.selectedKeys().clear();
      }
    } catch (IOException e) {
      if (!closed) {
        throw new UncheckedIOException(e);
      }
    }
  }

  private static InetSocketAddress receive(DatagramChannel channel, ByteBuffer buf)
      throws IOException {
    buf.clear();
    try {
      return (InetSocketAddress) channel.receive(buf);
    } catch (ClosedChannelException e) {
      return null; // rebound away
    }
  }

  private Session newSession(InetSocketAddress client) {
    try {
      Session s = new Session(client, openChannel());
      s.upstream.register(selector, SelectionKey.OP_READ, s);
      return s;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void sendLoop() {
    try {
      while (!closed) {
        Packet p = due.take();
        try {
          if (p.direction == Direction.TO_SERVER) {
            p.session.upstream.send(ByteBuffer.wrap(p.data), server);
          } else {
            front.send(ByteBuffer.wrap(p.data), p.session.client);
          }
        } catch (ClosedChannelException e) {
          // Rebound or closing: the packet is lost, as it would be on a real path.
        } catch (IOException e) {
          // A full socket buffer or an unreachable port: UDP loses the packet.
        }
      }
    } catch (InterruptedException e) {
      // close()
    }
  }

  /** One client address and the upstream socket that stands for it. */
  private static final class Session {
    final InetSocketAddress client;
    volatile DatagramChannel upstream;

    Session(InetSocketAddress client, DatagramChannel upstream) {
      this.client = client;
      this.upstream = upstream;
    }
  }

  /** One direction: its faults, its random source, its state and its counters. */
  private static final class Link {
    final Random random;
    volatile Faults faults = Faults.NONE;
    // Touched only by the receive thread.
    boolean bad;
    long linkFreeAtNanos;
    final AtomicLong packetsIn = new AtomicLong();
    final AtomicLong bytesIn = new AtomicLong();
    final AtomicLong packetsOut = new AtomicLong();
    final AtomicLong bytesOut = new AtomicLong();
    final AtomicLong dropped = new AtomicLong();
    final AtomicLong duplicated = new AtomicLong();
    final AtomicLong corrupted = new AtomicLong();
    final AtomicLong reordered = new AtomicLong();

    Link(Random random) {
      this.random = random;
    }

    /** Decides a packet's fate and queues what survives. Runs on the receive thread. */
    void admit(byte[] data, Session session, UdpRelay relay) {
      Faults f = faults;
      packetsIn.incrementAndGet();
      bytesIn.addAndGet(data.length);
      bad = f.burstEnter > 0
          && (bad ? random.nextDouble() >= f.burstLeave : random.nextDouble() < f.burstEnter);
      if (f.blackhole || random.nextDouble() < f.loss
          || (bad && random.nextDouble() < f.burstLoss)) {
        dropped.incrementAndGet();
        return;
      }
      // Serialisation at the link's rate, then propagation delay with jitter.
      long now = System.nanoTime();
      long sent = now;
      if (f.bytesPerSecond > 0) {
        long start = Math.max(now, linkFreeAtNanos);
        if (start - now > f.queueLimit.toNanos()) {
          dropped.incrementAndGet();
          return;
        }
        linkFreeAtNanos = start + data.length * 1_000_000_000L / f.bytesPerSecond;
        sent = linkFreeAtNanos;
      }
      long departure = sent + f.delay.toNanos();
      if (!f.jitter.isZero()) {
        departure += (long) ((random.nextDouble() * 2 - 1) * f.jitter.toNanos());
      }
      departure = Math.max(sent, departure);
      if (f.reorder > 0 && random.nextDouble() < f.reorder) {
        departure += f.reorderHold.toNanos();
        reordered.incrementAndGet();
      }
      if (f.corrupt > 0 && random.nextDouble() < f.corrupt && data.length > 0) {
        int bit = random.nextInt(data.length * 8);
        data[bit >>> 3] ^= (byte) (1 << (bit & 7));
        corrupted.incrementAndGet();
      }
      Direction direction = this == relay.toServer ? Direction.TO_SERVER : Direction.TO_CLIENT;
      int copies = f.duplicate > 0 && random.nextDouble() < f.duplicate ? 2 : 1;
      if (copies == 2) {
        duplicated.incrementAndGet();
      }
      for (int i = 0; i < copies; i++) {
        packetsOut.incrementAndGet();
        bytesOut.addAndGet(data.length);
        relay.due.add(new Packet(direction, session, data, departure,
            relay.sequence.incrementAndGet()));
      }
    }
  }

  /** A packet waiting for its departure time; equal times leave in arrival order. */
  private static final class Packet implements Delayed {
    final Direction direction;
    final Session session;
    final byte[] data;
    final long departureNanos;
    final long sequence;

    Packet(Direction direction, Session session, byte[] data, long departureNanos,
        long sequence) {
      this.direction = direction;
      this.session = session;
      this.data = data;
      this.departureNanos = departureNanos;
      this.sequence = sequence;
    }

    @Override
    public long getDelay(TimeUnit unit) {
      return unit.convert(departureNanos - System.nanoTime(), TimeUnit.NANOSECONDS);
    }

    @Override
    public int compareTo(Delayed o) {
      Packet p = (Packet) o;
      int c = Long.compare(departureNanos, p.departureNanos);
      return c != 0 ? c : Long.compare(sequence, p.sequence);
    }
  }
}
