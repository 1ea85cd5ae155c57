package dev.brpc.testing;

import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.LifecycleMethodExecutionExceptionHandler;
import org.junit.jupiter.api.extension.TestExecutionExceptionHandler;

/**
 * Prints the stacks of the transport's and kwik's threads when a test fails, before teardown
 * releases them: a call that hangs in CI leaves the evidence of where it waited in the log.
 * When the transport is on the class path, kwik's state for every live connection follows
 * ({@code dev.brpc.quic.internal.Diagnostics}).
 *
 * <p>Thread-safe.
 */
public final class ThreadDumpOnFailure
    implements TestExecutionExceptionHandler, LifecycleMethodExecutionExceptionHandler {
  @Override
  public void handleTestExecutionException(ExtensionContext context, Throwable failure)
      throws Throwable {
    StringBuilder b = new StringBuilder("=== threads at the failure of ")
        .append(context.getDisplayName()).append(" ===\n");
    for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
      StackTraceElement[] stack = e.getValue();
      boolean relevant = Arrays.stream(stack).anyMatch(f -> f.getClassName().startsWith("dev.brpc")
          || f.getClassName().startsWith("tech.kwik") || f.getClassName().startsWith("io.grpc"));
      if (!relevant) {
        continue;
      }
      b.append('"').append(e.getKey().getName()).append("\" ").append(e.getKey().getState())
          .append('\n');
      for (int i = 0; i < Math.min(stack.length, 30); i++) {
        b.append("    at ").append(stack[i]).append('\n');
      }
    }
    b.append(kwikState());
    System.err.print(b);
    throw failure;
  }

  /** A teardown that fails (a transport that does not terminate) gets the same dump. */
  @Override
  public void handleAfterEachMethodExecutionException(ExtensionContext context, Throwable failure)
      throws Throwable {
    handleTestExecutionException(context, failure);
  }

  private static String kwikState() {
    try {
      Object state = Class.forName("dev.brpc.quic.internal.Diagnostics")
          .getMethod("describeAll").invoke(null);
      return "=== kwik state of the live connections ===\n" + state;
    } catch (ReflectiveOperationException | LinkageError e) {
      return "";
    }
  }
}
