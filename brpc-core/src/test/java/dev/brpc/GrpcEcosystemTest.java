package dev.brpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.brpc.test.Req;
import io.grpc.Channel;
import io.grpc.Metadata;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.opentelemetry.GrpcOpenTelemetry;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * What grpc-java users bring along works over brpc, in both directions: grpc-services' health
 * and reflection services, and grpc-opentelemetry's standard metrics and tracing, each on the
 * server's services called by a client and on a client's services called back by the server.
 */
@org.junit.jupiter.api.extension.ExtendWith(dev.brpc.fixtures.ThreadDumpOnFailure.class)
class GrpcEcosystemTest {
  private static final AttributeKey<String> METHOD = AttributeKey.stringKey("grpc.method");
  private Fixture f;

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  @Test
  void health_isServedBothWays() throws Exception {
    HealthStatusManager serverHealth = new HealthStatusManager();
    HealthStatusManager clientHealth = new HealthStatusManager();
    f = new Fixture(b -> b.addService(serverHealth.getHealthService()));
    BrpcClient client = f.connect(f.clientBuilder(new Fixture.Agent("ada"))
        .addService(clientHealth.getHealthService()));
    Channel toClient = f.server.client(client.id()).orElseThrow().channel();

    assertEquals(ServingStatus.SERVING, check(client.channel(), ""));
    assertEquals(ServingStatus.SERVING, check(toClient, ""));
    clientHealth.setStatus("brpc.core.test.Agent", ServingStatus.NOT_SERVING);
    serverHealth.setStatus("brpc.core.test.Hub", ServingStatus.SERVING);
    assertEquals(ServingStatus.NOT_SERVING, check(toClient, "brpc.core.test.Agent"));
    assertEquals(ServingStatus.SERVING, check(client.channel(), "brpc.core.test.Hub"));
  }

  @Test
  void reflection_listsEachSidesServices() throws Exception {
    f = new Fixture(b -> b.addService(ProtoReflectionServiceV1.newInstance()));
    BrpcClient client = f.connect(f.clientBuilder(new Fixture.Agent("ada"))
        .addService(ProtoReflectionServiceV1.newInstance()));

    assertTrue(listServices(client.channel()).contains("brpc.core.test.Hub"));
    Set<String> clientSide = listServices(f.server.client(client.id()).orElseThrow().channel());
    assertTrue(clientSide.contains("brpc.core.test.Agent"), clientSide.toString());
    assertTrue(clientSide.contains("grpc.reflection.v1.ServerReflection"), clientSide.toString());
  }

  @Test
  void openTelemetryMetrics_recordCallsAndCallbacks_onBothSides() throws Exception {
    InMemoryMetricReader serverMetrics = InMemoryMetricReader.create();
    InMemoryMetricReader clientMetrics = InMemoryMetricReader.create();
    callAndCallBack(otel(serverMetrics), otel(clientMetrics));

    Collection<MetricData> server = serverMetrics.collectAllMetrics();
    Collection<MetricData> clientSide = clientMetrics.collectAllMetrics();
    assertEquals(Set.of("brpc.core.test.Hub/Call"),
        methods(server, "grpc.server.call.duration"));
    assertEquals(Set.of("brpc.core.test.Agent/Name"),
        methods(server, "grpc.client.attempt.duration"));
    assertEquals(Set.of("brpc.core.test.Hub/Call"),
        methods(clientSide, "grpc.client.attempt.duration"));
    assertEquals(Set.of("brpc.core.test.Agent/Name"),
        methods(clientSide, "grpc.server.call.duration"));
    assertEquals(Set.of("brpc.core.test.Agent/Name"),
        methods(server, "grpc.client.call.duration"));
  }

  @Test
  void openTelemetryTracing_followsACallIntoItsCallback_inOneTrace() throws Exception {
    InMemorySpanExporter serverSpans = InMemorySpanExporter.create();
    InMemorySpanExporter clientSpans = InMemorySpanExporter.create();
    callAndCallBack(otel(serverSpans), otel(clientSpans));

    List<SpanData> spans = new ArrayList<>(clientSpans.getFinishedSpanItems());
    spans.addAll(serverSpans.getFinishedSpanItems());
    Set<String> names = spans.stream().map(SpanData::getName)
        .collect(Collectors.toCollection(TreeSet::new));
    for (String expected : List.of("Sent.brpc.core.test.Hub.Call",
        "Recv.brpc.core.test.Hub.Call", "Sent.brpc.core.test.Agent.Name",
        "Recv.brpc.core.test.Agent.Name")) {
      assertTrue(names.contains(expected), expected + " in " + names);
    }
    // The trace context crossed the connection with the call and came back with the callback.
    assertEquals(1, spans.stream().map(SpanData::getTraceId).distinct().count(),
        spans.toString());
  }

  /**
   * A server and a client, each side's four builders configured by its own OpenTelemetry, and
   * one call whose handler calls the client back (Hub/Call one way, Agent/Name the other).
   * Returns once each side's server tracers saw their call closed: they run after
   * OpenTelemetry's, so its metrics and spans are recorded by then.
   */
  private void callAndCallBack(GrpcOpenTelemetry serverOtel, GrpcOpenTelemetry clientOtel)
      throws Exception {
    CountDownLatch serverCallsClosed = new CountDownLatch(1);
    CountDownLatch clientCallbacksClosed = new CountDownLatch(1);
    f = new Fixture(b -> b
        .transport(t -> {
          serverOtel.configureServerBuilder(t);
          t.addStreamTracerFactory(closed(serverCallsClosed));
        })
        .callbackChannel(serverOtel::configureChannelBuilder));
    BrpcClient client = f.connect(f.clientBuilder(new Fixture.Agent("ada"))
        .transport(clientOtel::configureChannelBuilder)
        .callbacks(c -> {
          clientOtel.configureServerBuilder(c);
          c.addStreamTracerFactory(closed(clientCallbacksClosed));
        }));
    assertEquals("ada", Fixture.hub(client).call(Req.newBuilder().setText("name").build())
        .getText());
    assertTrue(serverCallsClosed.await(20, TimeUnit.SECONDS));
    assertTrue(clientCallbacksClosed.await(20, TimeUnit.SECONDS));
  }

  private static GrpcOpenTelemetry otel(InMemoryMetricReader reader) {
    return GrpcOpenTelemetry.newBuilder()
        .sdk(OpenTelemetrySdk.builder()
            .setMeterProvider(SdkMeterProvider.builder().registerMetricReader(reader).build())
            .build())
        .build();
  }

  private static GrpcOpenTelemetry otel(InMemorySpanExporter exporter) {
    return GrpcOpenTelemetry.newBuilder()
        .sdk(OpenTelemetrySdk.builder()
            .setTracerProvider(SdkTracerProvider.builder()
                .addSpanProcessor(SimpleSpanProcessor.create(exporter)).build())
            .setPropagators(ContextPropagators.create(W3CTraceContextPropagator.getInstance()))
            .build())
        .build();
  }

  private static ServerStreamTracer.Factory closed(CountDownLatch latch) {
    return new ServerStreamTracer.Factory() {
      @Override
      public ServerStreamTracer newServerStreamTracer(String fullMethodName, Metadata headers) {
        return new ServerStreamTracer() {
          @Override
          public void streamClosed(Status status) {
            latch.countDown();
          }
        };
      }
    };
  }

  /** The grpc.method of every point of {@code metric}, with at least one recorded value. */
  private static Set<String> methods(Collection<MetricData> metrics, String metric) {
    return metrics.stream().filter(m -> m.getName().equals(metric))
        .flatMap(m -> m.getData().getPoints().stream())
        .map(p -> p.getAttributes().get(METHOD))
        .collect(Collectors.toCollection(TreeSet::new));
  }

  private static ServingStatus check(Channel channel, String service) {
    return HealthGrpc.newBlockingStub(channel).withDeadlineAfter(20, TimeUnit.SECONDS)
        .check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus();
  }

  private static Set<String> listServices(Channel channel) throws Exception {
    CompletableFuture<Set<String>> services = new CompletableFuture<>();
    StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(channel)
        .withDeadlineAfter(20, TimeUnit.SECONDS)
        .serverReflectionInfo(new StreamObserver<>() {
          @Override
          public void onNext(ServerReflectionResponse response) {
            services.complete(response.getListServicesResponse().getServiceList().stream()
                .map(ServiceResponse::getName).collect(Collectors.toCollection(TreeSet::new)));
          }

          @Override
          public void onError(Throwable t) {
            services.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {}
        });
    requests.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
    Set<String> result = services.get(20, TimeUnit.SECONDS);
    requests.onCompleted();
    return result;
  }
}
