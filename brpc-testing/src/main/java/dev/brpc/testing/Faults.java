package dev.brpc.testing;

import java.time.Duration;
import java.util.Objects;

/**
 * The faults {@link UdpRelay} applies to one direction of traffic: an immutable value, built
 * from {@link #NONE} with the {@code with…} methods and handed to {@link UdpRelay#set}.
 *
 * <p>Per packet, in this order: blackhole, loss (random, then Gilbert-Elliott), rate limit
 * (tail drop when the queue holds more than {@link #queueLimit}), delay with jitter, reordering
 * hold, corruption of one bit, duplication. Probabilities are in [0, 1].
 *
 * <p>Immutable and thread-safe.
 */
public final class Faults {
  /** No fault: every packet is forwarded at once, unchanged. */
  public static final Faults NONE = new Faults(Duration.ZERO, Duration.ZERO, 0, 0, 0, 0, 0,
      Duration.ZERO, 0, 0, 0, Duration.ofMillis(100), false);

  final Duration delay;
  final Duration jitter;
  final double loss;
  final double burstEnter;
  final double burstLeave;
  final double burstLoss;
  final double reorder;
  final Duration reorderHold;
  final double duplicate;
  final double corrupt;
  final long bytesPerSecond;
  final Duration queueLimit;
  final boolean blackhole;

  private Faults(Duration delay, Duration jitter, double loss, double burstEnter,
      double burstLeave, double burstLoss, double reorder, Duration reorderHold,
      double duplicate, double corrupt, long bytesPerSecond, Duration queueLimit,
      boolean blackhole) {
    this.delay = delay;
    this.jitter = jitter;
    this.loss = loss;
    this.burstEnter = burstEnter;
    this.burstLeave = burstLeave;
    this.burstLoss = burstLoss;
    this.reorder = reorder;
    this.reorderHold = reorderHold;
    this.duplicate = duplicate;
    this.corrupt = corrupt;
    this.bytesPerSecond = bytesPerSecond;
    this.queueLimit = queueLimit;
    this.blackhole = blackhole;
  }

  /**
   * Each packet waits {@code delay} plus a uniformly random amount in [-jitter, +jitter]
   * (never less than zero). Jitter alone reorders packets, as it does on a real path.
   */
  public Faults withDelay(Duration delay, Duration jitter) {
    requireNonNegative(delay, "delay");
    requireNonNegative(jitter, "jitter");
    return new Faults(delay, jitter, loss, burstEnter, burstLeave, burstLoss, reorder,
        reorderHold, duplicate, corrupt, bytesPerSecond, queueLimit, blackhole);
  }

  /** Each packet is lost independently with this probability. */
  public Faults withLoss(double probability) {
    return new Faults(delay, jitter, probability(probability), burstEnter, burstLeave,
        burstLoss, reorder, reorderHold, duplicate, corrupt, bytesPerSecond, queueLimit,
        blackhole);
  }

  /**
   * Bursty loss, a Gilbert-Elliott channel: before each packet the link moves from the good
   * state to the bad one with probability {@code enter} and back with {@code leave}; in the
   * bad state a packet is lost with {@code lossWhenBad}. The mean burst lasts {@code
   * 1/leave} packets and the long-run loss is {@code lossWhenBad * enter / (enter + leave)}.
   */
  public Faults withBurstLoss(double enter, double leave, double lossWhenBad) {
    return new Faults(delay, jitter, loss, probability(enter), probability(leave),
        probability(lossWhenBad), reorder, reorderHold, duplicate, corrupt, bytesPerSecond,
        queueLimit, blackhole);
  }

  /** With this probability a packet is held {@code hold} longer, so later ones overtake it. */
  public Faults withReorder(double probability, Duration hold) {
    requireNonNegative(hold, "hold");
    return new Faults(delay, jitter, loss, burstEnter, burstLeave, burstLoss,
        probability(probability), hold, duplicate, corrupt, bytesPerSecond, queueLimit,
        blackhole);
  }

  /** With this probability a packet is delivered twice. */
  public Faults withDuplicate(double probability) {
    return new Faults(delay, jitter, loss, burstEnter, burstLeave, burstLoss, reorder,
        reorderHold, probability(probability), corrupt, bytesPerSecond, queueLimit, blackhole);
  }

  /** With this probability one random bit of a packet is flipped. */
  public Faults withCorrupt(double probability) {
    return new Faults(delay, jitter, loss, burstEnter, burstLeave, burstLoss, reorder,
        reorderHold, duplicate, probability(probability), bytesPerSecond, queueLimit,
        blackhole);
  }

  /**
   * The link carries at most {@code bytesPerSecond}; packets queue behind each other and are
   * dropped when the queue would hold more than {@code queueLimit} of sending time, as a
   * router's buffer does. {@code 0} means unlimited.
   */
  public Faults withRate(long bytesPerSecond, Duration queueLimit) {
    if (bytesPerSecond < 0) {
      throw new IllegalArgumentException("bytesPerSecond < 0: " + bytesPerSecond);
    }
    requireNonNegative(queueLimit, "queueLimit");
    return new Faults(delay, jitter, loss, burstEnter, burstLeave, burstLoss, reorder,
        reorderHold, duplicate, corrupt, bytesPerSecond, queueLimit, blackhole);
  }

  /** Every packet is dropped while this is true. */
  public Faults withBlackhole(boolean on) {
    return new Faults(delay, jitter, loss, burstEnter, burstLeave, burstLoss, reorder,
        reorderHold, duplicate, corrupt, bytesPerSecond, queueLimit, on);
  }

  public boolean blackhole() {
    return blackhole;
  }

  private static double probability(double p) {
    if (!(p >= 0 && p <= 1)) {
      throw new IllegalArgumentException("not a probability: " + p);
    }
    return p;
  }

  private static void requireNonNegative(Duration d, String what) {
    Objects.requireNonNull(d, what);
    if (d.isNegative()) {
      throw new IllegalArgumentException(what + " is negative: " + d);
    }
  }

  @Override
  public String toString() {
    return "Faults{delay=" + delay + "±" + jitter + ", loss=" + loss + ", burst=" + burstEnter
        + "/" + burstLeave + "/" + burstLoss + ", reorder=" + reorder + "@" + reorderHold
        + ", duplicate=" + duplicate + ", corrupt=" + corrupt + ", rate=" + bytesPerSecond
        + "B/s, blackhole=" + blackhole + "}";
  }
}
