package dev.brpc.quic;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import dev.brpc.quic.test.EchoGrpc;
import dev.brpc.quic.test.Msg;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** gRPC call semantics over one connection, in both directions (reverse = server calls client). */
class CallSemanticsTest {
  private QuicPair pair;

  @BeforeEach
  void setUp() throws Exception {
    pair = new QuicPair();
  }

  @AfterEach
  void tearDown() throws Exception {
    pair.close();
  }

  @ParameterizedTest(name = "reverse={0}")
  @ValueSource(booleans = {false, true})
  void unary_echoesPayload(boolean reverse) throws Exception {
    EchoGrpc.EchoBlockingStub stub = EchoGrpc.newBlockingStub(pair.channel(reverse));
    Msg reply = stub.unary(Msg.newBuilder().setText("hello")
        .setPayload(ByteString.copyFromUtf8("payload")).build());
    assertEquals("hello", reply.getText());
    assertEquals("payload", reply.getPayload().toStringUtf8());
  }
}
