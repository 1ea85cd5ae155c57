package dev.brpc.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

/**
 * Keeps the build ready to publish: brpc-bom lists exactly the published modules (those that do
 * not set {@code maven.deploy.skip}), at the project's version, and carries the same Maven
 * Central metadata as the root pom (it has no parent to inherit it from); every published
 * module has a name and a description.
 */
class BuildMetadataTest {
  private static final Path ROOT = DemoCommandTest.ROOT;

  @Test
  void theBom_listsEveryPublishedModule_andNothingElse() throws Exception {
    Set<String> published = new TreeSet<>();
    for (String module : texts(pom("pom.xml"), "modules", "module")) {
      Document pom = pom(module + "/pom.xml");
      if (!"true".equals(property(pom, "maven.deploy.skip"))
          && !module.equals("brpc-bom")) {
        published.add(child(pom.getDocumentElement(), "artifactId"));
      }
    }
    Set<String> inBom = new TreeSet<>();
    for (Element dependency : elements(pom("brpc-bom/pom.xml").getDocumentElement(),
        "dependencyManagement", "dependencies", "dependency")) {
      assertEquals("dev.brpc", child(dependency, "groupId"));
      assertEquals("${project.version}", child(dependency, "version"));
      inBom.add(child(dependency, "artifactId"));
    }
    assertEquals(published, inBom);
    assertTrue(published.containsAll(
        List.of("brpc-core", "brpc-quic-transport", "brpc-quic-netty", "brpc-testing")),
        published.toString());
  }

  @Test
  void theBom_hasTheProjectsVersion_andTheRootPomsMetadata() throws Exception {
    Element root = pom("pom.xml").getDocumentElement();
    Element bom = pom("brpc-bom/pom.xml").getDocumentElement();
    assertEquals(child(root, "version"), child(bom, "version"));
    for (String field : List.of("url", "licenses", "developers", "scm")) {
      String expected = normalized(firstChild(root, field));
      assertFalse(expected.isBlank(), "the root pom has no " + field);
      assertEquals(expected, normalized(firstChild(bom, field)), field);
    }
    assertTrue(Files.exists(ROOT.resolve("LICENSE")));
  }

  @Test
  void everyPublishedModule_hasANameAndADescription() throws Exception {
    for (String module : texts(pom("pom.xml"), "modules", "module")) {
      Element pom = pom(module + "/pom.xml").getDocumentElement();
      assertFalse(child(pom, "name").isBlank(), module);
      assertFalse(child(pom, "description").isBlank(), module);
    }
  }

  private static Document pom(String path) throws Exception {
    return DocumentBuilderFactory.newInstance().newDocumentBuilder()
        .parse(ROOT.resolve(path).toFile());
  }

  private static String property(Document pom, String name) {
    for (Element properties : elements(pom.getDocumentElement(), "properties")) {
      String value = child(properties, name);
      if (!value.isEmpty()) {
        return value;
      }
    }
    return "";
  }

  private static List<String> texts(Document pom, String... path) {
    List<String> texts = new ArrayList<>();
    for (Element e : elements(pom.getDocumentElement(), path)) {
      texts.add(e.getTextContent().trim());
    }
    return texts;
  }

  /** The elements at {@code path} below {@code parent}, direct children at each step. */
  private static List<Element> elements(Element parent, String... path) {
    List<Element> level = List.of(parent);
    for (String name : path) {
      List<Element> next = new ArrayList<>();
      for (Element e : level) {
        NodeList children = e.getChildNodes();
        for (int i = 0; i < children.getLength(); i++) {
          Node n = children.item(i);
          if (n instanceof Element && n.getNodeName().equals(name)) {
            next.add((Element) n);
          }
        }
      }
      level = next;
    }
    return level;
  }

  private static Element firstChild(Element parent, String name) {
    List<Element> found = elements(parent, name);
    return found.isEmpty() ? null : found.get(0);
  }

  private static String child(Element parent, String name) {
    Element e = firstChild(parent, name);
    return e == null ? "" : e.getTextContent().trim();
  }

  private static String normalized(Element e) {
    return e == null ? "" : e.getTextContent().replaceAll("\\s+", " ").trim();
  }
}
