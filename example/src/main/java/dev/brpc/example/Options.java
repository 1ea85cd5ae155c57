package dev.brpc.example;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code --name value} command-line options, checked against the names a program accepts.
 *
 * <p>Not thread-safe.
 */
final class Options {
  private final Map<String, String> values = new HashMap<>();

  Options(String[] args, Set<String> accepted, String usage) {
    for (int i = 0; i < args.length; i++) {
      String name = args[i];
      if (!accepted.contains(name) || i + 1 == args.length) {
        throw new IllegalArgumentException("unknown or incomplete option " + name + "\nusage: "
            + usage);
      }
      values.put(name, args[++i]);
    }
  }

  String get(String name, String fallback) {
    return values.getOrDefault(name, fallback);
  }

  int getInt(String name, int fallback) {
    String v = values.get(name);
    return v == null ? fallback : Integer.parseInt(v);
  }
}
