package dev.brpc.quic.internal.kwik;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import tech.kwik.core.QuicConnection;

/**
 * What kwik holds for one connection, for diagnosing a connection that stopped moving: its
 * sender (congestion window, bytes in flight, queued send requests per encryption level), its
 * loss recovery (timer, probe count, ack-eliciting packets in flight per packet number space),
 * its flow-control credit both ways, and for each stream the bytes kwik still has to send and
 * the bytes it received unread. {@link KwikConnection#describe} returns it; tests print it for
 * every live connection when they fail ({@code dev.brpc.quic.internal.Diagnostics}).
 *
 * <p>Everything is read by reflection from kwik 0.10.9's private fields, without locks, so a
 * value can be torn or stale; a field kwik renamed shows as {@code ?name}. Never on a hot path.
 *
 * <p>Stateless; thread-safe.
 */
final class KwikDiagnostics {
  private KwikDiagnostics() {}

  static String describe(QuicConnection quic) {
    StringBuilder b = new StringBuilder();
    try {
      Object sender = call(quic, "getSender");
      b.append("sender{packetsSent=").append(field(sender, "packetsSent"))
          .append(" signalled=").append(field(sender, "signalled"))
          .append(" running=").append(field(sender, "running"));
      Object cc = field(sender, "congestionController");
      b.append(" inFlight=").append(field(cc, "bytesInFlight"))
          .append(" cwnd=").append(field(cc, "congestionWindow"));
      Object[] queues = (Object[]) field(sender, "sendRequestQueue");
      for (int i = 0; i < queues.length; i++) {
        Object q = queues[i];
        b.append(" q").append(i).append("=").append(size(field(q, "requestQueue"))).append('/')
            .append(size(field(q, "probeQueue"))).append("/ack:").append(field(q, "nextAckTime"));
      }
      Object assembler = field(sender, "packetAssembler");
      Object levels = field(assembler, "enabledLevels");
      b.append(" levels=").append(levels instanceof Object[]
          ? java.util.Arrays.toString((Object[]) levels) : levels).append("} ");
      Object recovery = field(sender, "recoveryManager");
      b.append("recovery{timer=").append(field(recovery, "timerExpiration"))
          .append(" ptoCount=").append(field(recovery, "ptoCount"));
      Object[] detectors = (Object[]) field(recovery, "lossDetectors");
      for (int i = 0; i < detectors.length; i++) {
        Object d = detectors[i];
        Object eliciting = field(d, "ackElicitingInFlight");
        b.append(" pn").append(i).append("{eliciting=")
            .append(eliciting instanceof AtomicInteger ? ((AtomicInteger) eliciting).get() : eliciting)
            .append(" logged=").append(size(field(d, "packetSentLog")))
            .append(" largestAcked=").append(field(d, "largestAcked"))
            .append(" lossTime=").append(field(d, "lossTime"))
            .append(" closed=").append(field(d, "isClosed")).append('}');
      }
      Object fc = field(quic, "flowController");
      Object streams = call(quic, "getStreamManager");
      b.append("} credit{send allowed=").append(field(fc, "maxDataAllowed"))
          .append(" assigned=").append(field(fc, "maxDataAssigned"))
          .append("; receive max=").append(field(streams, "flowControlMax"))
          .append(" advertised=").append(field(streams, "flowControlLastAdvertised"))
          .append(" received=").append(field(streams, "cumulativeReceiveOffset")).append('}');
      Map<?, ?> streamAllowed = (Map<?, ?>) field(fc, "maxStreamDataAllowed");
      Map<?, ?> streamAssigned = (Map<?, ?>) field(fc, "maxStreamDataAssigned");
      for (Map.Entry<?, ?> e : ((Map<?, ?>) field(streams, "streams")).entrySet()) {
        Object stream = e.getValue();
        Object out = field(stream, "outputStream");
        Object in = field(stream, "inputStream");
        b.append("\n    stream ").append(e.getKey())
            .append(" out{buffered=").append(field(field(out, "sendBuffer"), "bufferedBytes"))
            .append(" requests=").append(field(out, "sendRequestsQueued"))
            .append(" offset=").append(field(out, "currentOffset"))
            .append(" credit=").append(streamAssigned.get(e.getKey())).append('/')
            .append(streamAllowed.get(e.getKey()))
            .append(" closed=").append(field(out, "closed"))
            .append(" reset=").append(field(out, "reset"))
            .append("} in{received=").append(field(in, "largestOffsetReceived"))
            .append(" read=").append(field(KwikReceiveHook.unwrap(field(in, "receiveBuffer")), "readUpToOffset"))
            .append(" closed=").append(field(in, "closed"))
            .append(" reset=").append(field(in, "reset")).append('}');
      }
    } catch (ReflectiveOperationException | RuntimeException e) {
      b.append(" (").append(e).append(')');
    }
    return b.toString();
  }

  private static Object size(Object collection) {
    if (collection instanceof Map) {
      return ((Map<?, ?>) collection).size();
    }
    return collection instanceof Collection ? ((Collection<?>) collection).size() : collection;
  }

  private static Object call(Object o, String name) throws ReflectiveOperationException {
    for (Class<?> c = o.getClass(); c != null; c = c.getSuperclass()) {
      try {
        Method m = c.getDeclaredMethod(name);
        m.setAccessible(true);
        return m.invoke(o);
      } catch (NoSuchMethodException e) {
        // look in the superclass
      }
    }
    throw new NoSuchMethodException(name);
  }

  private static Object field(Object o, String name) throws IllegalAccessException {
    if (o == null) {
      return null;
    }
    for (Class<?> c = o.getClass(); c != null; c = c.getSuperclass()) {
      try {
        Field f = c.getDeclaredField(name);
        f.setAccessible(true);
        return f.get(o);
      } catch (NoSuchFieldException e) {
        // look in the superclass
      }
    }
    return "?" + name;
  }
}
