import assert from "node:assert/strict";
import { test } from "node:test";

import { tileLayout } from "../../web/static/js/views/call-layout.js";

test("one person fills the box, bounded by its height", () => {
  const { columns, tileWidth } = tileLayout(1, 1000, 450, 8);
  assert.equal(columns, 1);
  assert.equal(tileWidth, 800); // 450 × 16/9
});

test("two people side by side in a wide box", () => {
  const { columns, tileWidth } = tileLayout(2, 1000, 400, 8);
  assert.equal(columns, 2);
  assert.equal(tileWidth, 496);
});

test("four people two by two in a box of their shape", () => {
  assert.equal(tileLayout(4, 808, 458, 8).columns, 2);
});

test("many in a narrow box stack in one column", () => {
  assert.equal(tileLayout(3, 300, 2000, 8).columns, 1);
});

test("never below a usable width", () => {
  assert.equal(tileLayout(9, 100, 50, 8).tileWidth, 120);
});
