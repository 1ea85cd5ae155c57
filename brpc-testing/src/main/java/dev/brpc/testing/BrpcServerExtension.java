package dev.brpc.testing;

import static java.util.Objects.requireNonNull;

import dev.brpc.BrpcClient;
import dev.brpc.BrpcServer;
import dev.brpc.ClientListener;
import dev.brpc.ClientServiceBuilder;
import dev.brpc.ConnectedClient;
import dev.brpc.quic.SelfSignedCertificate;
import io.grpc.BindableService;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A JUnit 5 extension for testing code that runs on a {@link BrpcServer}, a handler that calls
 * its client back above all: it starts a server on 127.0.0.1 (an ephemeral port, a generated
 * certificate for {@code localhost}), hands out {@link BrpcClient}s connected to it, and after
 * each test shuts down and awaits everything it handed out or was given, failing the test if
 * something does not terminate in time (a call left running, a leaked client), as grpc-java's
 * {@code GrpcCleanupRule} does.
 *
 * <pre>{@code
 * @RegisterExtension
 * final BrpcServerExtension<NamerGrpc.NamerBlockingStub> brpc =
 *     BrpcServerExtension.create(NamerGrpc::newBlockingStub)
 *         .configureServer(server -> server.addService(GreeterService::new));
 *
 * @Test
 * void greetsTheCallerByTheNameItGives() {
 *   BrpcClient client = brpc.connectClient(new NamerService("Ada"));
 *   GreetReply reply = GreeterGrpc.newBlockingStub(client.channel()).greet(request);
 *   assertEquals("Hello, Ada!", reply.getGreeting());
 * }
 * }</pre>
 *
 * <p>In an instance field, each test gets a server of its own. In a {@code static} field, the
 * test class shares one server, started before the first test and stopped after the last;
 * clients are still per test: after each test they are shut down and the server is seen to
 * drop them, so the next test starts with {@link BrpcServer#clients()} empty.
 *
 * <p>After a test, resources are shut down gracefully ({@code shutdown()}), clients first,
 * then what was {@linkplain #register(ManagedChannel) registered} (last registered first),
 * then the server; each is awaited within what is left of the {@linkplain
 * #terminationTimeout termination timeout} (default 10 s). What does not terminate is shut
 * down with {@code shutdownNow()} and named in an {@link AssertionError} that fails the test.
 *
 * <p>Thread-safety: configure it before the tests run; during a test, its methods may be
 * called from any thread.
 *
 * @param <C> the server's client stub type, built by its {@link ClientServiceBuilder}
 */
public final class BrpcServerExtension<C>
    implements BeforeAllCallback, BeforeEachCallback, AfterEachCallback, AfterAllCallback {

  /** One certificate per JVM: generating a key pair takes a few milliseconds each time. */
  private static final class Certificate {
    static final SelfSignedCertificate INSTANCE = SelfSignedCertificate.generate("localhost");
  }

  /** Generous: a first handshake on a busy machine, with classes still loading, takes seconds. */
  private static final long CONNECT_TIMEOUT_SECONDS = 30;

  private final ClientServiceBuilder<C> clientService;
  private final List<Consumer<? super BrpcServer.Builder<C>>> serverConfig = new ArrayList<>();
  private final List<Consumer<? super BrpcClient.Builder>> clientConfig = new ArrayList<>();
  private long terminationTimeoutNanos = TimeUnit.SECONDS.toNanos(10);

  /** Guards everything below; notified when the server drops a client. */
  private final Object lock = new Object();
  private BrpcServer<C> server;
  private boolean serverPerClass;
  private final List<BrpcClient> clients = new ArrayList<>();
  /** Registered channels, servers and clients, in registration order. */
  private final List<Resource> resources = new ArrayList<>();

  private BrpcServerExtension(ClientServiceBuilder<C> clientService) {
    this.clientService = requireNonNull(clientService, "clientService");
  }

  /**
   * An extension whose server reaches its clients through stubs built by
   * {@code clientService}, e.g. {@code NamerGrpc::newBlockingStub}.
   *
   * @param clientService builds the stub that calls a client, from the client's channel
   * @param <C> the stub type
   * @return a new extension, to configure and register with {@code @RegisterExtension}
   */
  public static <C> BrpcServerExtension<C> create(ClientServiceBuilder<C> clientService) {
    return new BrpcServerExtension<>(clientService);
  }

  /**
   * Configures the server before it is built: its services, interceptors, authenticator,
   * limits, engine. The address and the certificate are the extension's. May be called more
   * than once; applied in order.
   *
   * @param configure applied to the server's builder before each server is built
   * @return this extension
   */
  public BrpcServerExtension<C> configureServer(
      Consumer<? super BrpcServer.Builder<C>> configure) {
    serverConfig.add(requireNonNull(configure, "configure"));
    return this;
  }

  /**
   * Configures every client the extension builds ({@link #clientBuilder},
   * {@link #connectClient}), before the test's own configuration. May be called more than
   * once; applied in order.
   *
   * @param configure applied to each client's builder
   * @return this extension
   */
  public BrpcServerExtension<C> configureClients(
      Consumer<? super BrpcClient.Builder> configure) {
    clientConfig.add(requireNonNull(configure, "configure"));
    return this;
  }

  /**
   * How long, in all, the clean-up after a test waits for everything to terminate.
   *
   * @param timeout the time, positive
   * @param unit its unit
   * @return this extension
   */
  public BrpcServerExtension<C> terminationTimeout(long timeout, TimeUnit unit) {
    if (timeout <= 0) {
      throw new IllegalArgumentException("timeout must be positive: " + timeout);
    }
    terminationTimeoutNanos = unit.toNanos(timeout);
    return this;
  }

  /**
   * The running server.
   *
   * @return the server of the current test (or class)
   * @throws IllegalStateException outside a test
   */
  public BrpcServer<C> server() {
    synchronized (lock) {
      if (server == null) {
        throw new IllegalStateException("the server runs only while a test runs: is the"
            + " extension registered with @RegisterExtension?");
      }
      return server;
    }
  }

  /**
   * The certificate the server presents; its clients trust it. Valid for {@code localhost}.
   *
   * @return the certificate, the same for every extension in the JVM
   */
  public SelfSignedCertificate certificate() {
    return Certificate.INSTANCE;
  }

  /**
   * A builder for a client of the server, trusting its certificate, with the
   * {@linkplain #configureClients clients' configuration} applied. What it builds is the
   * caller's to close, or to {@linkplain #register(BrpcClient) register}.
   *
   * @return a new builder for {@code localhost} and the server's port
   */
  public BrpcClient.Builder clientBuilder() {
    BrpcClient.Builder builder = BrpcClient.forAddress("localhost", server().port())
        .trustCertificate(certificate().certificate());
    for (Consumer<? super BrpcClient.Builder> c : clientConfig) {
      c.accept(builder);
    }
    return builder;
  }

  /**
   * A client serving {@code services} to the server, connected (waiting up to 30 s, through
   * retries), and shut down after the test.
   *
   * @param services what the client serves to the server
   * @return the connected client
   * @throws io.grpc.StatusRuntimeException if it does not connect
   */
  public BrpcClient connectClient(BindableService... services) {
    return connectClient(builder -> {
      for (BindableService s : services) {
        builder.addService(s);
      }
    });
  }

  /**
   * A client configured by {@code configure} (after the clients' configuration), connected
   * (waiting up to 30 s, through retries), and shut down after the test.
   *
   * @param configure applied to the client's builder: its services, metadata, settings
   * @return the connected client
   * @throws io.grpc.StatusRuntimeException if it does not connect
   */
  public BrpcClient connectClient(Consumer<? super BrpcClient.Builder> configure) {
    BrpcClient.Builder builder = clientBuilder();
    configure.accept(builder);
    BrpcClient client = register(builder.build());
    client.connect(CONNECT_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    return client;
  }

  /**
   * Shuts {@code client} down after the test, and fails the test if it does not terminate.
   *
   * @param client a client the test built
   * @return {@code client}
   */
  public BrpcClient register(BrpcClient client) {
    synchronized (lock) {
      clients.add(requireNonNull(client, "client"));
    }
    return client;
  }

  /**
   * Shuts {@code channel} down after the test, and fails the test if it does not terminate.
   *
   * @param channel a channel the test built
   * @param <T> its type
   * @return {@code channel}
   */
  public <T extends ManagedChannel> T register(T channel) {
    add(new Resource(channel.toString(), channel::shutdown, channel::shutdownNow,
        channel::awaitTermination));
    return channel;
  }

  /**
   * Shuts {@code server} down after the test, and fails the test if it does not terminate.
   *
   * @param server a server the test built
   * @param <T> its type
   * @return {@code server}
   */
  public <T extends Server> T register(T server) {
    add(new Resource(server.toString(), server::shutdown, server::shutdownNow,
        server::awaitTermination));
    return server;
  }

  /**
   * Shuts {@code server} down after the test, and fails the test if it does not terminate.
   *
   * @param server a server the test built
   * @param <T> its type
   * @return {@code server}
   */
  public <T extends BrpcServer<?>> T register(T server) {
    add(brpcServer(server));
    return server;
  }

  private void add(Resource resource) {
    synchronized (lock) {
      resources.add(resource);
    }
  }

  @Override
  public void beforeAll(ExtensionContext context) throws IOException {
    synchronized (lock) {
      serverPerClass = true;
    }
    startServer();
  }

  @Override
  public void beforeEach(ExtensionContext context) throws IOException {
    startServer();
  }

  @Override
  public void afterEach(ExtensionContext context) throws InterruptedException {
    boolean stopServer;
    synchronized (lock) {
      stopServer = !serverPerClass;
    }
    cleanUp(stopServer);
  }

  @Override
  public void afterAll(ExtensionContext context) throws InterruptedException {
    cleanUp(true);
  }

  private void startServer() throws IOException {
    synchronized (lock) {
      if (server != null) {
        return;
      }
      BrpcServer.Builder<C> builder = BrpcServer.forAddress(
              new InetSocketAddress("127.0.0.1", 0), clientService)
          .useTransportSecurity(certificate())
          .addListener(new ClientListener<>() {
            @Override
            public void disconnected(ConnectedClient<C> client, Status status) {
              synchronized (lock) {
                lock.notifyAll();
              }
            }
          });
      for (Consumer<? super BrpcServer.Builder<C>> c : serverConfig) {
        c.accept(builder);
      }
      BrpcServer<C> started = builder.build();
      try {
        started.start();
      } catch (IOException | RuntimeException e) {
        started.shutdownNow();
        throw e;
      }
      server = started;
    }
  }

  /**
   * Shuts down the test's clients and registered resources, waits for the server to drop the
   * clients, and, if {@code stopServer}, shuts the server down too. Throws one AssertionError
   * naming everything that did not terminate.
   */
  private void cleanUp(boolean stopServer) throws InterruptedException {
    List<BrpcClient> clientsToClose;
    List<Resource> toClose = new ArrayList<>();
    BrpcServer<C> serverToWatch;
    synchronized (lock) {
      clientsToClose = new ArrayList<>(clients);
      clients.clear();
      for (BrpcClient c : clientsToClose) {
        toClose.add(new Resource("BrpcClient " + idOf(c), c::shutdown, c::shutdownNow,
            c::awaitTermination));
      }
      for (int i = resources.size() - 1; i >= 0; i--) {
        toClose.add(resources.get(i));
      }
      resources.clear();
      serverToWatch = server;
      if (stopServer && server != null) {
        toClose.add(brpcServer(server));
        server = null;
      }
    }
    long deadline = System.nanoTime() + terminationTimeoutNanos;
    for (Resource r : toClose) {
      r.shutdown.run();
    }
    List<String> stuck = new ArrayList<>();
    for (Resource r : toClose) {
      if (!r.await.awaitTermination(Math.max(0, deadline - System.nanoTime()),
          TimeUnit.NANOSECONDS)) {
        r.shutdownNow.run();
        stuck.add(r.name);
      }
    }
    if (!stopServer && serverToWatch != null) {
      List<UUID> left = awaitDropped(serverToWatch, clientsToClose, deadline);
      if (!left.isEmpty()) {
        stuck.add("the server still lists clients " + left + " after they shut down");
      }
    }
    if (!stuck.isEmpty()) {
      throw new AssertionError("not terminated within "
          + TimeUnit.NANOSECONDS.toMillis(terminationTimeoutNanos)
          + " ms of shutdown() (a call left running, or a resource never closed?): "
          + String.join("; ", stuck));
    }
  }

  /** Waits for the server to drop {@code closed}; returns the ids it still lists. */
  private List<UUID> awaitDropped(BrpcServer<C> server, List<BrpcClient> closed, long deadline)
      throws InterruptedException {
    List<UUID> ids = new ArrayList<>();
    for (BrpcClient c : closed) {
      UUID id = idOf(c);
      if (id != null) {
        ids.add(id);
      }
    }
    synchronized (lock) {
      while (true) {
        ids.removeIf(id -> server.client(id).isEmpty());
        long left = deadline - System.nanoTime();
        if (ids.isEmpty() || left <= 0) {
          return ids;
        }
        TimeUnit.NANOSECONDS.timedWait(lock, left);
      }
    }
  }

  private static UUID idOf(BrpcClient client) {
    try {
      return client.id();
    } catch (IllegalStateException neverConnected) {
      return null;
    }
  }

  private static Resource brpcServer(BrpcServer<?> server) {
    String name;
    try {
      name = "BrpcServer on port " + server.port();
    } catch (RuntimeException notStarted) {
      name = "BrpcServer (not started)";
    }
    return new Resource(name, server::shutdown, server::shutdownNow, server::awaitTermination);
  }

  /** Something to shut down and await after a test. */
  private static final class Resource {
    final String name;
    final Runnable shutdown;
    final Runnable shutdownNow;
    final Await await;

    Resource(String name, Runnable shutdown, Runnable shutdownNow, Await await) {
      this.name = name;
      this.shutdown = shutdown;
      this.shutdownNow = shutdownNow;
      this.await = await;
    }
  }

  @FunctionalInterface
  private interface Await {
    boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException;
  }
}
