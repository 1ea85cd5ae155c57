package dev.brpc;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkNotNull;

import io.grpc.Channel;
import io.grpc.Metadata;
import io.grpc.Status;
import java.util.List;

/**
 * Where a {@link Director} sends a call: a connected client, or any channel (a backend, another
 * server), and optionally, as well, to secondaries. Immutable.
 *
 * <pre>{@code
 * return Route.to(agent);                  // a ConnectedClient of this server
 * return Route.to(channel, "backend-eu");  // anything else that takes calls
 * return Route.to(primary).withSecondaries(List.of(Route.to(replica1), Route.to(replica2)),
 *     (secondary, status, trailers) -> log.info(secondary + ": " + status));
 * }</pre>
 *
 * <p><b>Fan-out.</b> With secondaries, the caller's headers and every request message go to the
 * primary and to each secondary; the caller gets the primary's response headers, messages,
 * status and trailers, and nothing else. Each secondary's responses are read and dropped, and its
 * outcome goes to the {@link SecondaryListener}. A secondary never fails the call, and never
 * slows it: the caller is paced by the primary alone, and a secondary that falls more than 8 MiB
 * of requests behind is cancelled (its outcome says so). A secondary keeps the caller's deadline
 * but not the call's end: once the primary has answered, the secondaries run on until they
 * finish or the deadline passes; if the caller cancels, they are cancelled too.
 *
 * <p>Thread-safe.
 */
public final class Route {
  private final Channel channel;
  private final String name;
  private final List<Route> secondaries;
  private final SecondaryListener listener;

  private Route(Channel channel, String name, List<Route> secondaries,
      SecondaryListener listener) {
    this.channel = channel;
    this.name = name;
    this.secondaries = secondaries;
    this.listener = listener;
  }

  private Route(Channel channel, String name) {
    this(channel, name, List.of(), null);
  }

  /**
   * To a connected client, over its own connection. If the client is gone by the time the call
   * starts, the call fails UNAVAILABLE.
   *
   * @param client the client that serves the call
   * @return the route
   */
  public static Route to(ConnectedClient<?> client) {
    checkNotNull(client, "client");
    return new Route(client.channel(), client.toString());
  }

  /**
   * To any channel. The call carries the caller's deadline; the channel's own settings
   * (interceptors, credentials) apply.
   *
   * @param channel the channel that takes the call
   * @param name names the target in messages and logs
   * @return the route
   */
  public static Route to(Channel channel, String name) {
    return new Route(checkNotNull(channel, "channel"), checkNotNull(name, "name"));
  }

  /**
   * This route, and the same call to each of {@code secondaries} as well (see "Fan-out" above).
   *
   * @param secondaries where copies of the call go; routes without secondaries of their own
   * @param listener hears each secondary's outcome
   * @return a new route with these secondaries
   */
  public Route withSecondaries(List<Route> secondaries, SecondaryListener listener) {
    List<Route> copy = List.copyOf(checkNotNull(secondaries, "secondaries"));
    for (Route r : copy) {
      checkArgument(r.secondaries.isEmpty(), "a secondary has secondaries of its own: %s", r);
    }
    return new Route(channel, name, copy, checkNotNull(listener, "listener"));
  }

  Channel channel() {
    return channel;
  }

  List<Route> secondaries() {
    return secondaries;
  }

  SecondaryListener listener() {
    return listener;
  }

  /**
   * Hears how each secondary of a fanned-out call ended.
   *
   * <p>Runs on the secondary call's executor; must not throw (what it throws is logged).
   */
  @FunctionalInterface
  public interface SecondaryListener {
    /**
     * {@code secondary}'s copy of the call ended.
     *
     * @param secondary the secondary's route
     * @param status how its call ended
     * @param trailers its trailers
     */
    void closed(Route secondary, Status status, Metadata trailers);
  }

  @Override
  public String toString() {
    return name;
  }
}
