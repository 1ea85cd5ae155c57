package dev.brpc.quic.internal;

import java.io.IOException;

/**
 * A header block, declared or decoded, is over the receiver's metadata limit. Becomes
 * {@code RESOURCE_EXHAUSTED}.
 *
 * <p>Immutable; thread-safe.
 */
final class MetadataTooLargeException extends IOException {
  private static final long serialVersionUID = 1L;

  MetadataTooLargeException(String message) {
    super(message);
  }
}
