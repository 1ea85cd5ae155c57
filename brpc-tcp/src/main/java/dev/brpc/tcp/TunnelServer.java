package dev.brpc.tcp;

import dev.brpc.quic.engine.CloseInfo;
import dev.brpc.quic.engine.ConnectionAcceptor;
import dev.brpc.quic.engine.ListenSpec;
import io.grpc.Attributes;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallExecutorSupplier;
import io.grpc.ServerCallHandler;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;

/**
 * The listening side of the tunnel: the {@code brpc.tunnel.v1.Tunnel} service on a Netty
 * server. A Connect call becomes a connection, handed to the acceptor; a Stream call joins the
 * connection its ATTACH names, and only if it came on the same TCP connection as that
 * connection's Connect call (the same two socket addresses): the token alone
 * proves nothing, so identity is the TCP connection, never something a client can say.
 *
 * <p>Thread-safe. The tunnel's calls run on grpc-netty's event loops (a direct executor):
 * nothing here blocks.
 */
final class TunnelServer {
  private static final SecureRandom random = new SecureRandom();
  private static final Executor DIRECT = Runnable::run;

  private final ListenSpec spec;
  private final ConnectionAcceptor acceptor;
  private final Map<ByteBuffer, Entry> connections = new ConcurrentHashMap<>();
  private volatile boolean accepting = true;

  private record Entry(TunnelConnection connection, Object tcpConnection) {}

  TunnelServer(ListenSpec spec, ConnectionAcceptor acceptor) {
    this.spec = spec;
    this.acceptor = acceptor;
  }

  void stopAccepting() {
    accepting = false;
  }

  /**
   * The TCP connection a call came on: its two ends' addresses, unique among live TCP
   * connections. (A transport filter's mark is not on the calls that arrive with the
   * connection's first bytes.)
   */
  private static Object tcpConnection(Attributes attrs) {
    return java.util.List.of(String.valueOf(attrs.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR)),
        String.valueOf(attrs.get(Grpc.TRANSPORT_ATTR_LOCAL_ADDR)));
  }

  ServerCallExecutorSupplier executors() {
    return new ServerCallExecutorSupplier() {
      @Override
      public <ReqT, RespT> Executor getExecutor(ServerCall<ReqT, RespT> call, Metadata md) {
        return Tunnel.SERVICE.equals(call.getMethodDescriptor().getServiceName()) ? DIRECT : null;
      }
    };
  }

  ServerServiceDefinition service() {
    return ServerServiceDefinition.builder(Tunnel.SERVICE)
        .addMethod(Tunnel.CONNECT, (ServerCallHandler<byte[], byte[]>) this::connect)
        .addMethod(Tunnel.STREAM, (ServerCallHandler<byte[], byte[]>) this::stream)
        .build();
  }

  private ServerCall.Listener<byte[]> connect(ServerCall<byte[], byte[]> call, Metadata h) {
    Pipes.Server pipe = new Pipes.Server(call);
    pipe.request(1);
    return new ServerCall.Listener<>() {
      private TunnelConnection connection;
      private boolean refused;

      @Override
      public void onMessage(byte[] f) {
        if (refused) {
          return;
        }
        if (connection == null) {
          try {
            hello(f);
          } catch (Tunnel.Malformed e) {
            refuse(0xa, "malformed HELLO: " + e.getMessage());
          }
        } else {
          connection.onControlFrame(f);
        }
        pipe.request(1);
      }

      private void refuse(long transportCode, String why) {
        refused = true;
        pipe.send(TunnelConnection.closeFrame(true, transportCode, why));
        pipe.finish();
      }

      private void hello(byte[] f) {
        if (f.length == 0 || f[0] != Tunnel.HELLO) {
          throw new Tunnel.Malformed("expected HELLO");
        }
        Tunnel.Reader r = new Tunnel.Reader(f, 1);
        long version = r.varint();
        long creditBidi = r.varint();
        long creditUni = r.varint();
        String alpn = r.rest();
        if (version != Tunnel.VERSION) {
          refuse(0xa, "tunnel version " + version + " is not spoken here (this server speaks "
              + Tunnel.VERSION + ")");
          return;
        }
        if (!alpn.equals(spec.alpn())) {
          refuse(0x100 + 120, "no common application protocol: the server speaks "
              + spec.alpn() + ", the client " + alpn);
          return;
        }
        if (!accepting) {
          refuse(2, "the server is not accepting connections");
          return;
        }
        byte[] token = new byte[Tunnel.TOKEN_SIZE];
        random.nextBytes(token);
        ByteBuffer key = ByteBuffer.wrap(token);
        Attributes attrs = call.getAttributes();
        InetSocketAddress remote = address(attrs.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR));
        InetSocketAddress local = address(attrs.get(Grpc.TRANSPORT_ATTR_LOCAL_ADDR));
        TunnelConnection c = new TunnelConnection(false, token, pipe, s -> {
          pipe.send(Tunnel.frame(Tunnel.OPEN, s.id()));
          return null;
        }, spec.limits().streamReceiveWindow(), spec.limits().maxPeerBidiStreams(),
            spec.limits().maxPeerUniStreams(), creditBidi, creditUni, local, remote,
            () -> connections.remove(key));
        connection = c;
        connections.put(key, new Entry(c, tcpConnection(attrs)));
        pipe.send(Tunnel.frame(Tunnel.WELCOME, token, spec.limits().maxPeerBidiStreams(),
            spec.limits().maxPeerUniStreams()));
        acceptor.accepted(c);
      }

      @Override
      public void onHalfClose() {
        if (connection != null) {
          connection.onControlClosed(new CloseInfo(CloseInfo.Kind.LOST, -1,
              "the client ended the connection's control call"));
        }
        pipe.finish();
      }

      @Override
      public void onCancel() {
        if (connection != null) {
          connection.onControlClosed(new CloseInfo(CloseInfo.Kind.LOST, -1,
              "the TCP connection is gone"));
        }
      }
    };
  }

  private ServerCall.Listener<byte[]> stream(ServerCall<byte[], byte[]> call, Metadata h) {
    Pipes.Server pipe = new Pipes.Server(call);
    pipe.request(1);
    return new ServerCall.Listener<>() {
      private TunnelConnection connection;

      @Override
      public void onMessage(byte[] f) {
        TunnelStream s = pipe.stream;
        if (s != null) {
          try {
            s.onFrame(f);
          } catch (Tunnel.Malformed e) {
            connection.closeForViolation("stream " + s.id() + ": " + e.getMessage());
          }
          return;
        }
        if (connection != null) {
          return; // refused
        }
        long id;
        byte[] token;
        try {
          if (f.length == 0 || f[0] != Tunnel.ATTACH) {
            throw new Tunnel.Malformed("expected ATTACH");
          }
          Tunnel.Reader r = new Tunnel.Reader(f, 1);
          id = r.varint();
          token = r.bytes(Tunnel.TOKEN_SIZE);
          r.end();
        } catch (Tunnel.Malformed e) {
          pipe.close(Status.INVALID_ARGUMENT.withDescription(e.getMessage()));
          return;
        }
        Entry e = connections.get(ByteBuffer.wrap(token));
        if (e == null || !e.tcpConnection().equals(tcpConnection(call.getAttributes()))) {
          pipe.close(Status.PERMISSION_DENIED.withDescription(
              "no such tunnel connection on this TCP connection"));
          return;
        }
        connection = e.connection();
        connection.attached(id, pipe);
      }

      @Override
      public void onReady() {
        TunnelStream s = pipe.stream;
        if (s != null) {
          s.onReady();
        }
      }

      @Override
      public void onComplete() {
        TunnelStream s = pipe.stream;
        if (s != null) {
          s.onCallClosed("ended");
        }
      }

      @Override
      public void onCancel() {
        TunnelStream s = pipe.stream;
        if (s != null) {
          s.onCallClosed("cancelled (the client reset it, or the TCP connection is gone)");
        }
      }
    };
  }

  private static InetSocketAddress address(java.net.SocketAddress a) {
    return a instanceof InetSocketAddress ? (InetSocketAddress) a : new InetSocketAddress(0);
  }
}
