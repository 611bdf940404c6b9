// No emoji character in the web client's own code, styles or pages (issue 18): a control drawn
// with one shows an empty box on a system without an emoji font. Icons are SVG (icons.js). The
// one exemption is web/static/js/emoji.js, the picker's choices: emoji there are content people
// send. Escapes count as the characters they stand for (JS "\u{1F389}", CSS "\1F389", HTML
// "&#x1F389;"). What the running UI draws is checked in tests/browser/test_icons.py.
//
// A Node test rather than an ESLint rule: it reads the CSS and the Jinja pages too, and ESLint's
// flat config would replace, not add to, the no-restricted-syntax rule that keeps Matrix paths
// in matrix.js (eslint.config.js).

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { extname, join, relative } from "node:path";
import { test } from "node:test";

const ROOT = new URL("../../", import.meta.url).pathname;
const SCANNED = ["web/static", "web/templates"];
const EXEMPT = "web/static/js/emoji.js";
// Pictographs, flag letters, the emoji presentation selector and the keycap mark.
const EMOJI = /[\p{Extended_Pictographic}\p{Regional_Indicator}\u{FE0F}\u{20E3}]/gu;

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return files(path);
    return [".js", ".css", ".html", ".svg"].includes(extname(path)) ? [path] : [];
  });
}

/** The text with the escapes of its language replaced by the characters they stand for. */
function decodeEscapes(text, ext) {
  if (ext === ".js") {
    return text.replace(/\\u\{([0-9a-fA-F]{1,6})\}|\\u([0-9a-fA-F]{4})/g, (_, long, short) =>
      long ? String.fromCodePoint(parseInt(long, 16)) : String.fromCharCode(parseInt(short, 16)),
    );
  }
  if (ext === ".css") return text.replace(/\\([0-9a-fA-F]{1,6}) ?/g, (_, hex) => safeCodePoint(parseInt(hex, 16)));
  return text.replace(/&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));/g, (_, hex, dec) =>
    safeCodePoint(hex ? parseInt(hex, 16) : Number(dec)),
  );
}

function safeCodePoint(n) {
  return n <= 0x10ffff ? String.fromCodePoint(n) : "\uFFFD";
}

/** Each emoji character of a file, as "line N: U+XXXX". */
function emojiIn(text, ext) {
  const found = [];
  decodeEscapes(text, ext)
    .split("\n")
    .forEach((line, i) => {
      for (const [char] of line.matchAll(EMOJI)) {
        found.push(`line ${i + 1}: U+${char.codePointAt(0).toString(16).toUpperCase()}`);
      }
    });
  return found;
}

test("no emoji character in the client's code, styles or pages, but the picker's choices", () => {
  const scanned = SCANNED.flatMap((dir) => files(join(ROOT, dir)));
  assert.ok(scanned.length > 50, `only ${scanned.length} files found`);
  const problems = [];
  for (const path of scanned) {
    const name = relative(ROOT, path);
    if (name === EXEMPT) continue;
    for (const where of emojiIn(readFileSync(path, "utf8"), extname(path))) problems.push(`${name} ${where}`);
  }
  assert.deepEqual(problems, [], "draw an SVG icon (icons.js) instead");
});

test("the exempt file is the picker's list, and it holds emoji", () => {
  const text = readFileSync(join(ROOT, EXEMPT), "utf8");
  assert.match(text, /^export const EMOJI = \[$/m);
  assert.ok(emojiIn(text, ".js").length >= 40);
});

test("an emoji is found however it is written", () => {
  assert.deepEqual(emojiIn('const a = "ok";\nconst b = "\u{1F389}";', ".js"), ["line 2: U+1F389"]);
  for (const [text, ext] of [
    ['x = "\\u{1F389}"', ".js"],
    ['x = "\\uD83C\\uDF89"', ".js"],
    ['x = "\\u2705"', ".js"],
    [".a::before { content: '\\1F389'; }", ".css"],
    [".a::before { content: '\\2714 '; }", ".css"],
    ["<span>&#x1F389;</span>", ".html"],
    ["<span>&#127881;</span>", ".html"],
    ["<span>\u{1F1EB}\u{1F1F7}</span>", ".html"],
    ['x = "\\u2764\\uFE0F"', ".js"],
  ]) {
    assert.ok(emojiIn(text, ext).length > 0, text);
  }
  // Arrows and the like in comments are no emoji; nor are ordinary escapes.
  assert.deepEqual(emojiIn('// a → b\nconst nl = "\\u000a"; /* \\n */', ".js"), []);
});
