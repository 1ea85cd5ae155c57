package dev.brpc.quic.internal;

import dev.brpc.quic.internal.kwik.HandshakeSplittingSocket;
import dev.brpc.quic.internal.kwik.KwikLogger;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.brpc.quic.QuicChannelBuilder;
import dev.brpc.quic.QuicServerBuilder;
import dev.brpc.quic.SelfSignedCertificate;
import io.grpc.InternalStatus;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import tech.kwik.core.QuicClientConnection;
import tech.kwik.core.QuicStream;

/**
 * A hostile or broken peer, driven by hand over raw kwik streams: each malformed call gets a
 * clear status on the wire, and the server keeps serving well-behaved clients.
 */
class BadInputTest {
  private static final SelfSignedCertificate CERT = SelfSignedCertificate.generate("localhost");
  private Server server;
  private QuicClientConnection raw;
  private ManagedChannel good;
  private final AtomicInteger served = new AtomicInteger();
  private QuicStream rawControl;
  private volatile QuicStream serverControl;

  @BeforeEach
  void setUp() throws Exception {
    server = QuicServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .useTransportSecurity(CERT)
        .headersTimeout(3, TimeUnit.SECONDS) // how long a side channel waits for its call
        .addService(new EchoGrpc.EchoImplBase() {
          @Override
          public void unary(Msg request, StreamObserver<Msg> r) {
            served.incrementAndGet();
            r.onNext(request);
            r.onCompleted();
          }
        })
        .build().start();
    raw = QuicClientConnection.newBuilder()
        .applicationProtocol(Wire.ALPN)
        .host("localhost").port(server.getPort())
        .customTrustStore(Pem.trustStore(java.util.List.of(CERT.certificate())))
        // As brpc's kwik dialer: without it, a dial to the native engine's server can hang
        // (KwikDialerHandshakeTest).
        .socketFactory(address -> new HandshakeSplittingSocket())
        .logger(KwikLogger.INSTANCE)
        .build();
  }

  @AfterEach
  void tearDown() throws Exception {
    if (good != null) {
      good.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    raw.close();
    server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
  }

  @Test
  void malformedCalls_eachGetAClearStatus_andTheServerKeepsServing() throws Exception {
    connectRaw();
    byte[] headers = HeaderBlock.encodeFrame(Wire.FRAME_HEADERS, new Metadata(),
        "/brpc.test.Echo/Unary", "localhost", new byte[0]);

    // A call that does not start with HEADERS.
    assertEquals(Status.Code.INTERNAL, statusOf(new byte[] {Wire.FRAME_DATA, 0}));
    // An unknown frame type after valid HEADERS; 0x03 was HALF_CLOSE in drafts (FIN is the
    // half-close) and is unknown too.
    assertEquals(Status.Code.INTERNAL, statusOf(concat(headers, new byte[] {0x2a, 0})));
    assertEquals(Status.Code.INTERNAL, statusOf(concat(headers, new byte[] {0x03, 0})));
    // HEADERS that declare 100 bytes and end after 3.
    assertEquals(Status.Code.INTERNAL,
        statusOf(new byte[] {Wire.FRAME_HEADERS, 0x40, 100, 1, 2, 3}));
    // HEADERS that declare a terabyte: refused from the length, nothing allocated.
    byte[] huge = new byte[9];
    huge[0] = Wire.FRAME_HEADERS;
    Varint.write(1L << 40, huge, 1);
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, statusOf(huge));
    // A message whose length prefix declares 2 GiB - 1, with 3 bytes behind it: refused from
    // the prefix (limit 4 MiB), nothing allocated.
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, statusOf(concat(headers,
        new byte[] {Wire.FRAME_DATA, 8, 0, 0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff, 1, 2, 3})));
    // A header name gRPC cannot represent.
    assertEquals(Status.Code.INTERNAL, statusOf(new byte[] {Wire.FRAME_HEADERS, 6, 5,
        ':', 'p', 'a', 't', 'h', 0}));

    // The same connection still carries a valid call...
    byte[] request = concat(headers, dataFrame(Msg.newBuilder().setText("ok").build()
        .toByteArray()));
    assertEquals(Status.Code.OK, statusOf(request));
    // ...and other clients are served.
    good = QuicChannelBuilder.forAddress("localhost", server.getPort())
        .trustCertificate(CERT.certificate()).build();
    assertEquals("ok", EchoGrpc.newBlockingStub(good)
        .unary(Msg.newBuilder().setText("ok").build()).getText());
  }

  /**
   * The reader parses what has arrived and keeps the rest of a frame for the next arrival
   * (StreamReader): a request sent a few bytes per flush, so that its varints, its header
   * block (3 KB, which the reader grows as it arrives) and its message are split across many
   * packets, is served like a whole one.
   */
  @ParameterizedTest(name = "{0} bytes per flush")
  @ValueSource(ints = {1, 7})
  void requestArrivingInPieces_isServed(int piece) throws Exception {
    connectRaw();
    Metadata metadata = new Metadata();
    metadata.put(Metadata.Key.of("big", Metadata.ASCII_STRING_MARSHALLER),
        "x".repeat(piece == 1 ? 10 : 3000));
    byte[] request = concat(HeaderBlock.encodeFrame(Wire.FRAME_HEADERS, metadata,
        "/brpc.test.Echo/Unary", "localhost", new byte[0]),
        dataFrame(Msg.newBuilder().setText("ok").build().toByteArray()));
    QuicStream s = raw.createStream(true);
    OutputStream out = s.getOutputStream();
    for (int i = 0; i < request.length; i += piece) {
      out.write(request, i, Math.min(piece, request.length - i));
      out.flush();
    }
    out.close();
    InputStream in = s.getInputStream();
    Msg reply = null;
    Status.Code code = null;
    while (code == null) {
      long type = Varint.read(in);
      assertNotNull(type >= 0 ? type : null, "stream ended without TRAILERS");
      byte[] payload = in.readNBytes((int) Varint.read(in));
      if (type == Wire.FRAME_DATA) {
        reply = Msg.parseFrom(java.util.Arrays.copyOfRange(payload, 5, payload.length));
      } else if (type == Wire.FRAME_TRAILERS) {
        code = HeaderBlock.decode(payload, 0, payload.length, false, 1 << 16).metadata
            .get(InternalStatus.CODE_KEY).getCode();
      }
    }
    assertEquals(Status.Code.OK, code);
    assertNotNull(reply);
    assertEquals("ok", reply.getText());
  }

  @Test
  void cancelThatOvertakesItsStream_theCallIsResetUnserved() throws Exception {
    connectRaw();
    byte[] headers = HeaderBlock.encodeFrame(Wire.FRAME_HEADERS, new Metadata(),
        "/brpc.test.Echo/Unary", "localhost", new byte[0]);
    byte[] request = concat(headers, dataFrame(Msg.newBuilder().setText("ok").build()
        .toByteArray()));
    // CANCEL for stream 0, our first call stream, before the stream exists; then a PING: the
    // server reads its control stream in order, so its answer means the CANCEL was handled.
    long code = Wire.errorCode(Status.CANCELLED);
    byte[] payload = new byte[16];
    int n = Varint.write(code, payload, Varint.write(0, payload, 0));
    rawControl.getOutputStream().write(concat(new byte[] {Wire.FRAME_CANCEL, (byte) n},
        java.util.Arrays.copyOf(payload, n), new byte[] {Wire.FRAME_PING, 9, 0, 1, 2, 3, 4, 5,
            6, 7, 8}));
    InputStream in = serverControl.getInputStream();
    while (true) {
      long type = Varint.read(in);
      assertNotNull(type >= 0 ? type : null, "server control stream ended");
      byte[] frame = in.readNBytes((int) Varint.read(in));
      if (type == Wire.FRAME_PING && (frame[0] & Wire.PING_FLAG_ACK) != 0) {
        break;
      }
    }

    QuicStream s = raw.createStream(true);
    assertEquals(0, s.getStreamId());
    s.getOutputStream().write(request);
    s.getOutputStream().close();
    java.io.IOException reset = org.junit.jupiter.api.Assertions.assertThrows(
        java.io.IOException.class, () -> s.getInputStream().readAllBytes());
    assertEquals(0, served.get(), "the cancelled call was served: " + reset);

    // The next call on the connection is served.
    assertEquals(Status.Code.OK, statusOf(request));
    assertEquals(1, served.get());
  }

  /**
   * Side channels (PROTOCOL.md section 7) that name no call of the peer's, or are malformed:
   * each is refused (reset) or answered INTERNAL, and the connection goes on. One that
   * overtakes its call's HEADERS waits for them.
   */
  @Test
  void badSideChannels_areRefused_oneThatOvertakesItsCall_waitsForIt() throws Exception {
    connectRaw();
    byte[] headers = HeaderBlock.encodeFrame(Wire.FRAME_HEADERS, new Metadata(),
        "/brpc.test.Echo/Unary", "localhost", new byte[0]);
    byte[] request = concat(headers, dataFrame(Msg.newBuilder().setText("ok").build()
        .toByteArray()));

    // A side channel for stream 1, one of the server's own streams: it has no such call.
    assertRefused(sideChannel(1));
    // A call that ended, then a side channel for it: refused at once.
    QuicStream ended = raw.createStream(true);
    ended.getOutputStream().write(request);
    ended.getOutputStream().close();
    assertEquals(Status.Code.OK, trailersStatus(ended.getInputStream()));
    assertRefused(sideChannel(ended.getStreamId()));
    // A call that never comes (stream 4000): refused after the headers timeout.
    assertRefused(sideChannel(4000));
    // SIDE_CHANNEL frames of 0 and 9 bytes, and one with a byte after its varint.
    assertEquals(Status.Code.INTERNAL, statusOf(new byte[] {Wire.FRAME_SIDE_CHANNEL, 0}));
    assertEquals(Status.Code.INTERNAL, statusOf(new byte[] {Wire.FRAME_SIDE_CHANNEL, 9,
        0, 0, 0, 0, 0, 0, 0, 0, 0}));
    assertEquals(Status.Code.INTERNAL, statusOf(new byte[] {Wire.FRAME_SIDE_CHANNEL, 2, 8, 0}));

    // A call's stream opened, its HEADERS held back; a side channel for it arrives first and
    // waits; the HEADERS come; the side channel is accepted (empty SIDE_CHANNEL), and its
    // bytes do not disturb the call.
    QuicStream call = raw.createStream(true); // nothing sent on it yet
    QuicStream side = sideChannel(call.getStreamId());
    side.getOutputStream().write(new byte[] {1, 2, 3});
    side.getOutputStream().flush();
    call.getOutputStream().write(headers);
    call.getOutputStream().flush();
    InputStream in = side.getInputStream();
    assertEquals(Wire.FRAME_SIDE_CHANNEL, in.read());
    assertEquals(0, in.read());
    call.getOutputStream().write(dataFrame(Msg.newBuilder().setText("ok").build()
        .toByteArray()));
    call.getOutputStream().close();
    assertEquals(Status.Code.OK, trailersStatus(call.getInputStream()));
    // The call is over: the server's side of the channel, which nobody took, is reset.
    assertThrows(java.io.IOException.class, in::readAllBytes);

    // The connection still serves calls.
    assertEquals(Status.Code.OK, statusOf(request));
  }

  /**
   * Many side channels for calls that never come wait at most the headers timeout each, hold
   * nothing else, and do not stop the connection's calls: they are all refused, and a call
   * made meanwhile is served.
   */
  @Test
  void aFloodOfSideChannelsForCallsThatNeverCome_isRefused_callsAreServed() throws Exception {
    connectRaw();
    java.util.List<QuicStream> flood = new java.util.ArrayList<>();
    for (int i = 0; i < 200; i++) {
      flood.add(sideChannel(400_000 + 4L * i));
    }
    byte[] request = concat(HeaderBlock.encodeFrame(Wire.FRAME_HEADERS, new Metadata(),
        "/brpc.test.Echo/Unary", "localhost", new byte[0]),
        dataFrame(Msg.newBuilder().setText("ok").build().toByteArray()));
    assertEquals(Status.Code.OK, statusOf(request));
    for (QuicStream s : flood) {
      assertRefused(s);
    }
    assertEquals(Status.Code.OK, statusOf(request));
  }

  /** Opens a stream whose first frame is SIDE_CHANNEL naming {@code callStreamId}. */
  private QuicStream sideChannel(long callStreamId) throws Exception {
    QuicStream s = raw.createStream(true);
    byte[] frame = new byte[2 + Varint.size(callStreamId)];
    frame[0] = Wire.FRAME_SIDE_CHANNEL;
    frame[1] = (byte) Varint.size(callStreamId);
    Varint.write(callStreamId, frame, 2);
    s.getOutputStream().write(frame);
    s.getOutputStream().flush();
    return s;
  }

  /** The server resets the stream: reading it fails, and no answer came before. */
  private static void assertRefused(QuicStream s) {
    java.io.IOException e = assertThrows(java.io.IOException.class,
        () -> s.getInputStream().readAllBytes());
    assertNotNull(e);
  }

  private void connectRaw() throws Exception {
    java.util.concurrent.CountDownLatch serverSettings = new java.util.concurrent.CountDownLatch(1);
    raw.setPeerInitiatedStreamCallback(s -> {
      if (s.isUnidirectional()) {
        serverControl = s;
        serverSettings.countDown(); // the server's control stream: it admitted us
      }
    });
    raw.connect();
    QuicStream control = raw.createStream(false);
    rawControl = control;
    byte[] prefix = {0};
    control.getOutputStream().write(
        HeaderBlock.encodeFrame(Wire.FRAME_SETTINGS, new Metadata(), null, null, prefix));
    control.getOutputStream().flush();
    // A conforming dialer opens no call before the server's SETTINGS (PROTOCOL.md, 3).
    org.junit.jupiter.api.Assertions.assertTrue(serverSettings.await(10, TimeUnit.SECONDS));
  }

  /** Sends {@code bytes} as a whole call and returns the grpc-status of its TRAILERS. */
  private Status.Code statusOf(byte[] bytes) throws Exception {
    QuicStream s = raw.createStream(true);
    OutputStream out = s.getOutputStream();
    out.write(bytes);
    out.close();
    return trailersStatus(s.getInputStream());
  }

  /** Reads a response up to its TRAILERS and returns their grpc-status. */
  private static Status.Code trailersStatus(InputStream in) throws Exception {
    while (true) {
      long type = Varint.read(in);
      assertNotNull(type >= 0 ? type : null, "stream ended without TRAILERS");
      long length = Varint.read(in);
      byte[] payload = in.readNBytes((int) length);
      if (type == Wire.FRAME_TRAILERS) {
        Metadata trailers = HeaderBlock.decode(payload, 0, payload.length, false, 1 << 16).metadata;
        return trailers.get(InternalStatus.CODE_KEY).getCode();
      }
    }
  }

  private static byte[] dataFrame(byte[] message) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    b.write(Wire.FRAME_DATA);
    byte[] len = new byte[Varint.size(message.length + 5)];
    Varint.write(message.length + 5, len, 0);
    b.writeBytes(len);
    b.write(0);
    b.write(message.length >>> 24);
    b.write(message.length >>> 16);
    b.write(message.length >>> 8);
    b.write(message.length);
    b.writeBytes(message);
    return b.toByteArray();
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      b.writeBytes(p);
    }
    return b.toByteArray();
  }
}
