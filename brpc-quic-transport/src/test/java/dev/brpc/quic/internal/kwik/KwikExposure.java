package dev.brpc.quic.internal.kwik;

import dev.brpc.quic.SelfSignedCertificate;
import dev.brpc.quic.internal.Pem;
import java.io.ByteArrayInputStream;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import tech.kwik.core.frame.NewConnectionIdFrame;
import tech.kwik.core.impl.Version;
import tech.kwik.core.server.ServerConnectionConfig;
import tech.kwik.core.server.ServerConnector;

/**
 * A JVM of its own, for {@code KwikFixesTest}: shows what bare kwik 0.10.9 does where brpc's
 * guards ({@link KwikHardening}) are not installed, which a test JVM that has loaded brpc's
 * kwik engine can no longer show. Modes:
 *
 * <ul>
 *   <li>{@code tokens}: prints {@code predicted=true} if the second of two stateless reset
 *       tokens follows from the first;
 *   <li>{@code exit}: starts a kwik server on a socket of its own and closes that socket
 *       under kwik's receiver; kwik 0.10.9 exits the JVM with status 9, else this prints
 *       {@code alive} and exits 0 after 20 s.
 * </ul>
 *
 * <p>Not thread-safe; a main program.
 */
public final class KwikExposure {
  private KwikExposure() {}

  public static void main(String[] args) throws Exception {
    switch (args[0]) {
      case "tokens" -> {
        NewConnectionIdFrame first = new NewConnectionIdFrame(Version.getDefault(), 1, 0,
            new byte[8]);
        NewConnectionIdFrame second = new NewConnectionIdFrame(Version.getDefault(), 2, 0,
            new byte[8]);
        System.out.println("predicted=" + predictsNext(first.getStatelessResetToken(),
            second.getStatelessResetToken()));
      }
      case "exit" -> {
        DatagramSocket socket = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
        ServerConnector server = connector(socket);
        server.start();
        socket.close(); // as a failing socket would: kwik's receiver gets an IOException
        TimeUnit.SECONDS.sleep(20);
        System.out.println("alive");
      }
      default -> throw new IllegalArgumentException(args[0]);
    }
  }

  /** A kwik server on {@code socket}, configured in full as brpc's listener does. */
  static ServerConnector connector(DatagramSocket socket) throws Exception {
    SelfSignedCertificate cert = SelfSignedCertificate.generate("localhost");
    return ServerConnector.builder()
        .withSocket(socket)
        .withKeyStore(Pem.keyStore(Pem.readPrivateKey(new ByteArrayInputStream(
                cert.privateKeyPem().getBytes(StandardCharsets.US_ASCII))),
                List.of(cert.certificate())),
            Pem.KEY_ALIAS, Pem.keyPassword())
        .withConfiguration(ServerConnectionConfig.builder()
            .maxOpenPeerInitiatedBidirectionalStreams(10)
            .maxBidirectionalStreamBufferSize(1 << 20)
            .maxConnectionBufferSize(10 << 20)
            .retryRequired(false)
            .build())
        .withLogger(KwikLogger.INSTANCE)
        .build();
  }

  /**
   * Whether {@code next} is what a {@code java.util.Random} that produced {@code token} (four
   * little-endian ints) produces next. The generator has 48 bits of state, of which the
   * token's first int shows the top 32: 2^16 guesses find the rest.
   */
  static boolean predictsNext(byte[] token, byte[] next) {
    ByteBuffer t = ByteBuffer.wrap(token).order(ByteOrder.LITTLE_ENDIAN);
    int i0 = t.getInt();
    int i1 = t.getInt();
    for (long low = 0; low < 1 << 16; low++) {
      long seed = ((i0 & 0xffffffffL) << 16) | low;
      seed = step(seed);
      if ((int) (seed >>> 16) != i1) {
        continue;
      }
      seed = step(step(seed)); // the token's third and fourth ints
      ByteBuffer predicted = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
      for (int k = 0; k < 4; k++) {
        seed = step(seed);
        predicted.putInt((int) (seed >>> 16));
      }
      if (Arrays.equals(predicted.array(), next)) {
        return true;
      }
    }
    return false;
  }

  /** java.util.Random's linear congruential step (its Javadoc gives the constants). */
  private static long step(long seed) {
    return (seed * 0x5DEECE66DL + 0xBL) & ((1L << 48) - 1);
  }
}
