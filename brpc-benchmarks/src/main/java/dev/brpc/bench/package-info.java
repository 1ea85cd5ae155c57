/**
 * The brpc-java benchmark: brpc over QUIC against grpc-java over Netty with TLS 1.3, with raw
 * kwik streams as the transport's floor. BENCHMARKS.md at the repository root says how to run
 * it and what every row means.
 *
 * <h2>Processes</h2>
 * {@link dev.brpc.bench.Benchmark} (the orchestrator) starts, for each stack, a server JVM and
 * a client JVM running {@link dev.brpc.bench.BenchProcess}, and drives them one command at a
 * time over their stdin and stdout ({@link dev.brpc.bench.ChildJvm}, {@link
 * dev.brpc.bench.Fields}). The orchestrator is idle while they measure.
 *
 * <h2>Workloads</h2>
 * {@link dev.brpc.bench.Workloads} holds every measured loop, written once against {@link
 * dev.brpc.bench.Stack.Caller}; {@link dev.brpc.bench.NettyStack}, {@link
 * dev.brpc.bench.BrpcStack} and {@link dev.brpc.bench.KwikStack} implement it. Warm-up and
 * CPU accounting live in the orchestrator, results in {@link dev.brpc.bench.ResultTable}.
 */
package dev.brpc.bench;
