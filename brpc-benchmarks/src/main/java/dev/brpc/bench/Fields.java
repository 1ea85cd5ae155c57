package dev.brpc.bench;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One line of the benchmark's parent-child protocol: a word, then {@code key=value} pairs
 * separated by spaces (values never contain spaces). Commands look like
 * {@code latency seconds=1.0 ops=0}; answers like {@code ok ops=1234 nanos=1000000000}.
 *
 * <p>Not thread-safe: build on one thread, then only read.
 */
final class Fields {
  private final String word;
  private final Map<String, String> values = new LinkedHashMap<>();

  Fields(String word) {
    this.word = word;
  }

  static Fields parse(String line) {
    String[] parts = line.trim().split("\\s+");
    Fields f = new Fields(parts[0]);
    for (int i = 1; i < parts.length; i++) {
      int eq = parts[i].indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("expected key=value, got '" + parts[i] + "' in: " + line);
      }
      f.values.put(parts[i].substring(0, eq), parts[i].substring(eq + 1));
    }
    return f;
  }

  String word() {
    return word;
  }

  Fields put(String key, Object value) {
    String s = String.valueOf(value);
    if (s.isEmpty() || s.chars().anyMatch(Character::isWhitespace)) {
      throw new IllegalArgumentException("value of " + key + " must be one non-empty word: '" + s
          + "'");
    }
    values.put(key, s);
    return this;
  }

  /** A copy with {@code key} set to {@code value}. */
  Fields with(String key, Object value) {
    Fields copy = new Fields(word);
    copy.values.putAll(values);
    return copy.put(key, value);
  }

  boolean has(String key) {
    return values.containsKey(key);
  }

  String get(String key) {
    String v = values.get(key);
    if (v == null) {
      throw new IllegalArgumentException("missing " + key + " in: " + this);
    }
    return v;
  }

  long getLong(String key) {
    return Long.parseLong(get(key));
  }

  int getInt(String key) {
    return Integer.parseInt(get(key));
  }

  double getDouble(String key) {
    return Double.parseDouble(get(key));
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder(word);
    values.forEach((k, v) -> sb.append(' ').append(k).append('=').append(v));
    return sb.toString();
  }
}
