// The vendored icon set (web/static/vendor/lucide) holds every icon the client names, and only
// the Lucide package's data: scripts/vendor-icons.mjs is the one way it changes.

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { ICON_NODES } from "../../web/static/vendor/lucide/icons.js";

const JS_DIR = new URL("../../web/static/js/", import.meta.url).pathname;

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith(".js") ? [join(dir, entry.name)] : [],
  );
}

test("every icon name in the client is in the vendored set", () => {
  // icon("name"…), setIcon(el, "name"…), and the names in ternaries and tables passed to them.
  const named = new Set();
  for (const file of sources(JS_DIR)) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/\b(?:icon|setIcon)\((?:[\w.]+, )?"([a-z0-9-]+)"/g)) named.add(m[1]);
    for (const m of text.matchAll(/\b(?:icon|setIcon|press)\([^)]*?\?\s*"([a-z0-9-]+)"\s*:\s*"([a-z0-9-]+)"/g)) {
      named.add(m[1]);
      named.add(m[2]);
    }
  }
  assert.ok(named.size >= 10, `found only ${[...named]}`);
  for (const name of named) assert.ok(name in ICON_NODES, `${name} is not vendored`);
});

test("each vendored icon is a list of SVG shape elements with attributes only", () => {
  const shapes = new Set(["path", "circle", "rect", "line", "polyline", "polygon", "ellipse"]);
  for (const [name, nodes] of Object.entries(ICON_NODES)) {
    assert.ok(nodes.length > 0, name);
    for (const [tag, attrs] of nodes) {
      assert.ok(shapes.has(tag), `${name}: ${tag}`);
      for (const value of Object.values(attrs)) assert.equal(typeof value, "string", name);
    }
  }
});
