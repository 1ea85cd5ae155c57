package dev.brpc.quic;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import io.grpc.Channel;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * One wire protocol: a kwik dialer with a native server and a native dialer with a kwik server
 * run calls and callbacks over the same connection. The engines are picked by name on the
 * builders, whatever {@code brpc.quic.engine} says.
 */
class CrossEngineTest {
  private static final int MIB = 1 << 20;
  private QuicPair pair;

  @AfterEach
  void tearDown() throws Exception {
    if (pair != null) {
      pair.close();
    }
  }

  private void connect(String serverEngine, String clientEngine) throws Exception {
    pair = new QuicPair(
        s -> s.engine(serverEngine).maxInboundMessageSize(8 * MIB),
        c -> c.engine(clientEngine).maxInboundMessageSize(8 * MIB),
        cb -> cb.maxInboundMessageSize(8 * MIB));
  }

  private static EchoGrpc.EchoBlockingStub stub(Channel channel) {
    return EchoGrpc.newBlockingStub(channel).withWaitForReady()
        .withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  @ParameterizedTest(name = "server {0}, dialer {1}")
  @CsvSource({"native, kwik", "kwik, native"})
  void fourMebibyteEcho_bothWays_tenTimes(String serverEngine, String clientEngine)
      throws Exception {
    connect(serverEngine, clientEngine);
    byte[] big = new byte[4 * MIB];
    for (int i = 0; i < big.length; i++) {
      big[i] = (byte) (i * 131 + (i >>> 13));
    }
    Msg request = Msg.newBuilder().setPayload(ByteString.copyFrom(big)).build();
    for (int i = 0; i < 10; i++) {
      assertArrayEquals(big, stub(pair.forward()).unary(request).getPayload().toByteArray(),
          "forward echo " + i);
      assertArrayEquals(big, stub(pair.reverse()).unary(request).getPayload().toByteArray(),
          "callback echo " + i);
    }
  }

  @ParameterizedTest(name = "server {0}, dialer {1}")
  @CsvSource({"native, kwik", "kwik, native"})
  void serverStreaming_andStreamCreditPastTheInitialLimit_bothWays(String serverEngine,
      String clientEngine) throws Exception {
    connect(serverEngine, clientEngine);
    for (boolean reverse : new boolean[] {false, true}) {
      Iterator<Msg> replies = stub(pair.channel(reverse))
          .serverStream(Msg.newBuilder().setCount(64).setSize(64 * 1024).build());
      int n = 0;
      while (replies.hasNext()) {
        assertEquals(64 * 1024, replies.next().getPayload().size());
        n++;
      }
      assertEquals(64, n);
      // Past the peer's initial stream limit (1,000 streams): credit is renewed.
      for (int i = 0; i < 1_500; i++) {
        assertEquals("call " + i, stub(pair.channel(reverse))
            .unary(Msg.newBuilder().setText("call " + i).build()).getText());
      }
    }
  }

  @ParameterizedTest(name = "server {0}, dialer {1}")
  @CsvSource({"native, kwik", "kwik, native"})
  void manyConcurrentCalls_bothWays(String serverEngine, String clientEngine) throws Exception {
    connect(serverEngine, clientEngine);
    for (boolean reverse : new boolean[] {false, true}) {
      EchoGrpc.EchoFutureStub stub = EchoGrpc.newFutureStub(pair.channel(reverse))
          .withWaitForReady().withDeadlineAfter(60, TimeUnit.SECONDS);
      List<com.google.common.util.concurrent.ListenableFuture<Msg>> calls = new ArrayList<>();
      for (int i = 0; i < 300; i++) {
        calls.add(stub.unary(Msg.newBuilder().setText("c" + i)
            .setPayload(ByteString.copyFrom(new byte[16 * 1024])).build()));
      }
      for (int i = 0; i < calls.size(); i++) {
        assertEquals("c" + i, calls.get(i).get(60, TimeUnit.SECONDS).getText());
      }
    }
  }
}
