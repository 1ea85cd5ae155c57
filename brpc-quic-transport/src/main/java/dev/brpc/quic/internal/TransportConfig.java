package dev.brpc.quic.internal;

import io.grpc.ManagedChannelBuilder;
import io.grpc.internal.GrpcUtil;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Settings shared by both sides of a connection, filled in by the public builders.
 *
 * <p>Mutable until handed to a transport, then treated as immutable; not thread-safe while
 * being filled in.
 */
public final class TransportConfig {
  /**
   * Applied to every channel toward a peer over an accepted connection ({@link
   * PeerConnectionImpl#channel}) before it is built: interceptors, OpenTelemetry, ... Null for
   * none.
   */
  public Consumer<? super ManagedChannelBuilder<?>> peerChannelConfig;
  /** Where the engine writes a qlog file per connection; null for none. */
  public Path qlogDirectory;
  public int maxInboundMessageSize = GrpcUtil.DEFAULT_MAX_MESSAGE_SIZE;
  public int maxInboundMetadataSize = GrpcUtil.DEFAULT_MAX_HEADER_LIST_SIZE;
  /** Calls the peer may have open toward us at once (QUIC bidirectional stream credit). */
  public int maxConcurrentCallsPerConnection = 1000;
  /** QUIC receive window per stream; the connection window is ten times this. */
  public long streamReceiveWindow = 1024 * 1024;
  /** QUIC idle timeout: a connection with no packets for this long is closed. */
  public long idleTimeoutNanos = TimeUnit.SECONDS.toNanos(30);
  /** gRPC keepalive: ping after this long without reads; disabled when Long.MAX_VALUE. */
  public long keepAliveTimeNanos = GrpcUtil.KEEPALIVE_TIME_NANOS_DISABLED;
  public long keepAliveTimeoutNanos = GrpcUtil.DEFAULT_KEEPALIVE_TIMEOUT_NANOS;
  public boolean keepAliveWithoutCalls = false;
  /**
   * How long one attempt to dial waits for the server's first packet. An attempt toward a
   * server that does not answer at all ends then, so the next one (after the channel's backoff)
   * starts with kwik's first, short retransmission interval instead of its ever longer later
   * ones. Once the server answers, the handshake may take up to {@link #handshakeTimeoutNanos}.
   */
  public long connectTimeoutNanos = TimeUnit.SECONDS.toNanos(20);
  /**
   * A call stream whose request HEADERS are not complete this long after the stream opened is
   * reset (a peer trickling its headers would otherwise hold a stream and a thread forever).
   */
  public long headersTimeoutNanos = TimeUnit.SECONDS.toNanos(10);
  /**
   * A peer that resets more than this many of its calls within {@link #resetWindowNanos} is
   * flooding us (open-and-reset costs it nothing and us a stream and a thread each): the
   * connection is closed. 0 disables the check.
   */
  public int maxResetsPerWindow = 1000;
  public long resetWindowNanos = TimeUnit.SECONDS.toNanos(1);
  /**
   * How long the QUIC handshake may take once the server answered, and then how long the
   * connect-time exchange of SETTINGS (the server's admission) may take.
   */
  public long handshakeTimeoutNanos = TimeUnit.SECONDS.toNanos(20);
  /**
   * With calls open and nothing from the peer for this long, the connection is probed with a
   * PING, and closed UNAVAILABLE if nothing arrives for as long again ({@code StallWatchdog}).
   * Long.MAX_VALUE disables it.
   */
  public long stallTimeoutNanos = TimeUnit.SECONDS.toNanos(5);
  /**
   * With no calls open and nothing from the peer for this long, the connection is probed with
   * a PING, and closed UNAVAILABLE if nothing arrives within the stall timeout: a peer that
   * vanished without a word (killed, unplugged) is noticed in about this plus the stall
   * timeout, not at the QUIC idle timeout ({@code StallWatchdog}). Long.MAX_VALUE disables it.
   */
  public long idleProbeNanos = TimeUnit.SECONDS.toNanos(4);
}
