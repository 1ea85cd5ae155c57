package dev.brpc.bench;

import dev.brpc.quic.internal.kwik.KwikSendFix;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeoutException;
import tech.kwik.core.ConnectionListener;
import tech.kwik.core.ConnectionTerminatedEvent;
import tech.kwik.core.QuicClientConnection;
import tech.kwik.core.QuicConnection;
import tech.kwik.core.QuicStream;
import tech.kwik.core.log.NullLogger;
import tech.kwik.core.server.ApplicationProtocolConnection;
import tech.kwik.core.server.ApplicationProtocolConnectionFactory;
import tech.kwik.core.server.ServerConnectionConfig;
import tech.kwik.core.server.ServerConnector;

/**
 * Raw kwik, no gRPC: the floor under brpc's transport. Each request is one bidirectional
 * stream: the client writes {@code [op][body]} and closes its side; the server reads to the
 * end, answers, and closes its side. Op 1 echoes a 16-byte body; op 2 ({@code count},
 * {@code size} as two ints) answers {@code count * size} bytes.
 *
 * <p>Configured like brpc's transport (ListeningServer and DialingTransportFactory) so the two
 * are comparable: 1 MiB stream windows (10 MiB per connection), 4 MiB UDP buffers, no Retry,
 * 1000 streams of credit, and brpc's own fix for kwik's lost-send-request race
 * ({@code KwikSendFix}, reached by reflection: it is deliberately not public API) applied to
 * every stream before the first write. Without it, 64 KiB writes stall within seconds.
 *
 * <p>Thread-safe. kwik's callback thread only hands each stream to a handler thread.
 */
final class KwikStack implements Stack {
  private static final String ALPN = "brpc-bench-raw";
  private static final byte UNARY = 1;
  private static final byte STREAM = 2;
  private static final int PAYLOAD = 16;
  private static final long STREAM_WINDOW = 1024 * 1024;
  private static final int MAX_STREAMS = 1000;

  private final Certificates certs;

  KwikStack(Certificates certs) {
    this.certs = certs;
  }

  @Override
  public Listening serve() throws Exception {
    DatagramSocket socket = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
    socket.setReceiveBufferSize(4 * 1024 * 1024);
    socket.setSendBufferSize(4 * 1024 * 1024);
    // kwik's configuration builder starts at zero streams and zero-byte buffers: set them all.
    ServerConnectionConfig config = ServerConnectionConfig.builder()
        .maxIdleTimeout(30_000)
        .maxOpenPeerInitiatedBidirectionalStreams(MAX_STREAMS)
        .maxOpenPeerInitiatedUnidirectionalStreams(0)
        .maxBidirectionalStreamBufferSize(STREAM_WINDOW)
        .maxUnidirectionalStreamBufferSize(1024)
        .maxConnectionBufferSize(STREAM_WINDOW * 10)
        .retryRequired(false)
        .build();
    ServerConnector connector = ServerConnector.builder()
        .withSocket(socket)
        .withKeyStore(certs.keyStore(), Certificates.ALIAS, Certificates.PASSWORD)
        .withConfiguration(config)
        .withLogger(new NullLogger())
        .build();
    ConnectionCount count = new ConnectionCount();
    ExecutorService handlers = Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "kwik-raw-handler");
      t.setDaemon(true);
      return t;
    });
    connector.registerApplicationProtocol(ALPN, new ApplicationProtocolConnectionFactory() {
      @Override
      public ApplicationProtocolConnection createConnection(String protocol, QuicConnection quic) {
        // On kwik's packet thread: wire up and return.
        count.connected();
        quic.setConnectionListener(new ConnectionListener() {
          @Override
          public void disconnected(ConnectionTerminatedEvent event) {
            count.disconnected();
          }
        });
        return new ApplicationProtocolConnection() {
          @Override
          public void acceptPeerInitiatedStream(QuicStream stream) {
            handlers.execute(() -> answer(stream));
          }
        };
      }

      @Override
      public int maxConcurrentPeerInitiatedBidirectionalStreams() {
        return MAX_STREAMS;
      }
    });
    connector.start();
    int port = socket.getLocalPort();
    return new Listening() {
      @Override
      public int port() {
        return port;
      }

      @Override
      public void awaitClients(int n, Duration timeout)
          throws InterruptedException, TimeoutException {
        count.awaitAtLeast(n, timeout);
      }
    };
  }

  /** Serves one request stream. On a handler thread. */
  private static void answer(QuicStream stream) {
    try {
      fix(stream);
      DataInputStream request = new DataInputStream(
          new ByteArrayInputStream(stream.getInputStream().readAllBytes()));
      byte op = request.readByte();
      try (OutputStream out = stream.getOutputStream()) {
        if (op == UNARY) {
          out.write(request.readNBytes(PAYLOAD));
        } else if (op == STREAM) {
          int count = request.readInt();
          byte[] message = new byte[request.readInt()];
          for (int i = 0; i < count; i++) {
            out.write(message);
          }
        } else {
          throw new IOException("unknown op " + op);
        }
      }
    } catch (IOException e) {
      stream.resetStream(1);
    }
  }

  @Override
  public Caller dial(int port) throws Exception {
    QuicClientConnection quic = QuicClientConnection.newBuilder()
        .applicationProtocol(ALPN)
        .host("localhost")
        .proxy("127.0.0.1")
        .port(port)
        .connectTimeout(Duration.ofSeconds(20))
        .maxIdleTimeout(Duration.ofSeconds(30))
        .defaultStreamReceiveBufferSize(STREAM_WINDOW)
        .customTrustStore(certs.trustStore())
        .logger(new NullLogger())
        .socketFactory(destination -> {
          DatagramSocket s = new DatagramSocket();
          s.setReceiveBufferSize(4 * 1024 * 1024);
          s.setSendBufferSize(4 * 1024 * 1024);
          return s;
        })
        .build();
    quic.connect();
    return new Caller() {
      @Override
      public void unary() throws IOException {
        long n = exchange(quic, ByteBuffer.allocate(1 + PAYLOAD).put(UNARY).array());
        if (n != PAYLOAD) {
          throw new IOException("echo of " + n + " bytes");
        }
      }

      @Override
      public long stream(int count, int size) throws IOException {
        return exchange(quic, ByteBuffer.allocate(9).put(STREAM).putInt(count).putInt(size)
            .array());
      }

      @Override
      public void close() {
        quic.close();
      }
    };
  }

  /** Sends one request on a new stream and reads the answer to its end; bytes read. */
  private static long exchange(QuicClientConnection quic, byte[] request) throws IOException {
    QuicStream stream = quic.createStream(true);
    fix(stream);
    try (OutputStream out = stream.getOutputStream()) {
      out.write(request);
    }
    byte[] buffer = new byte[64 * 1024];
    long total = 0;
    try (InputStream in = stream.getInputStream()) {
      for (int n; (n = in.read(buffer)) >= 0; ) {
        total += n;
      }
    }
    return total;
  }

  private static void fix(QuicStream stream) {
    KwikSendFix.apply(stream);
  }
}
