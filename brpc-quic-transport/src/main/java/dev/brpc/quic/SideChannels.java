package dev.brpc.quic;

import dev.brpc.quic.internal.SideChannelSlot;
import io.grpc.CallOptions;
import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * The side channels of one call (see {@link SideChannel}): either side of a call opens raw
 * byte streams to the other over the call's connection, and accepts those the other opens.
 *
 * <p>In a server handler (on either end of a brpc connection: a server's handler or a
 * client's callback handler), {@link #current()} gives the current call's:
 *
 * <pre>{@code
 * public void download(FileRequest request, StreamObserver<FileReply> responses) {
 *   try (SideChannel file = SideChannels.current().open()) {
 *     Files.copy(path, file.output());
 *   }
 *   responses.onNext(FileReply.getDefaultInstance());
 *   responses.onCompleted();
 * }
 * }</pre>
 *
 * <p>A caller makes one per call and passes it in the call options; the call may be blocking,
 * so another thread takes the channel:
 *
 * <pre>{@code
 * SideChannels sides = SideChannels.create();
 * Future<byte[]> file = executor.submit(() -> {
 *   try (SideChannel c = sides.accept()) {
 *     return c.input().readAllBytes();
 *   }
 * });
 * stub.withOption(SideChannels.CALL_OPTION, sides).download(request);
 * }</pre>
 *
 * <p>A call made without {@link #CALL_OPTION} refuses side channels: the callee's {@link
 * #open()} fails. Only brpc QUIC connections carry side channels.
 *
 * <p>Thread-safe; {@link #open()} and {@link #accept()} block.
 */
public final class SideChannels {
  /**
   * The call option that gives a call its side channels; the value serves one call. A call
   * retried transparently (its stream refused before it was processed) binds it to the new
   * stream; an {@link #open()} or {@link #accept()} waiting at that moment fails.
   */
  public static final CallOptions.Key<SideChannels> CALL_OPTION =
      CallOptions.Key.create("dev.brpc.quic.sideChannels");

  private final SideChannelSlot slot;

  private SideChannels(SideChannelSlot slot) {
    this.slot = slot;
  }

  /**
   * Side channels for a call this side is about to make: pass them with {@link #CALL_OPTION}.
   *
   * @return side channels bound to no call yet
   */
  public static SideChannels create() {
    return new SideChannels(new SideChannelSlot());
  }

  /**
   * The side channels of the call whose handler runs now (from the gRPC {@code Context}).
   *
   * @return the current call's side channels
   * @throws IllegalStateException outside a handler of a call over a brpc QUIC connection
   */
  public static SideChannels current() {
    SideChannelSlot slot = SideChannelSlot.current();
    if (slot == null) {
      throw new IllegalStateException("SideChannels.current() is called outside a call over a"
          + " brpc QUIC connection: call it in the server handler (its gRPC Context), not on"
          + " another thread without that Context");
    }
    return new SideChannels(slot);
  }

  /**
   * Opens a side channel to the other side of the call; returns once the other side has
   * taken it, so bytes written to it are not lost by a race with the call's end.
   *
   * @return the open side channel
   * @throws IOException if the call has ended (or ends first), the other side refused the
   *     channel (a call made without {@link #CALL_OPTION}), or the connection closed
   */
  public SideChannel open() throws IOException {
    return slot.open();
  }

  /**
   * Waits for the next side channel the other side of the call opens.
   *
   * @return the side channel
   * @throws IOException if the call ends first (with no channel left to take) or the
   *     connection closed. After the call ended OK, channels that came before it wait for an
   *     accept for the headers timeout (10 s by default), then are reset. A call that fails
   *     before it reaches a connection (none could be made, say) never tells its side
   *     channels: wait with {@link #accept(long, TimeUnit)}, or stop waiting when the call
   *     fails.
   */
  public SideChannel accept() throws IOException {
    return slot.accept(Long.MAX_VALUE);
  }

  /**
   * Waits at most {@code timeout} for the next side channel the other side of the call opens.
   *
   * @param timeout how long to wait
   * @param unit the unit of {@code timeout}
   * @return the side channel
   * @throws java.net.SocketTimeoutException if none came in time
   * @throws IOException if the call ends first (with no channel left to take) or the
   *     connection closed
   */
  public SideChannel accept(long timeout, TimeUnit unit) throws IOException {
    return slot.accept(unit.toNanos(timeout));
  }

  /**
   * For the transport, which finds the call's side channels in its call options: internal,
   * no compatibility promise (as grpc-java's {@code Internal*} accessors).
   *
   * @param options the call's options
   * @return the slot behind {@link #CALL_OPTION}, or null if the call has none
   */
  public static SideChannelSlot internalSlot(CallOptions options) {
    SideChannels channels = options.getOption(CALL_OPTION);
    return channels == null ? null : channels.slot;
  }

  @Override
  public String toString() {
    return "SideChannels(" + slot + ")";
  }
}
