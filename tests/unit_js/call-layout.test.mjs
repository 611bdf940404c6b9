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

// --- arrangeTiles: where each tile goes (the call panel's grid, up to Discord's 25 cameras) ---

import { arrangeTiles, pickSpeaker } from "../../web/static/js/views/call-layout.js";

function overlap(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function assertNoOverlap(rects) {
  for (let i = 0; i < rects.length; i += 1) {
    for (let j = i + 1; j < rects.length; j += 1) assert.ok(!overlap(rects[i], rects[j]), `tiles ${i} and ${j} overlap`);
  }
}

function inside(rects, width, height) {
  for (const r of rects) {
    assert.ok(r.x >= 0 && r.y >= 0 && r.x + r.width <= width && r.y + r.height <= height, JSON.stringify(r));
  }
}

test("25 cameras on a stage of 1200×640 make five rows of five equal 16:9 tiles, all in view", () => {
  const { rects, height } = arrangeTiles(25, 1200, 640);
  assert.equal(rects.length, 25);
  assert.equal(height, 640);
  assertNoOverlap(rects);
  inside(rects, 1200, 640);
  const rows = new Set(rects.map((r) => r.y));
  const columns = new Set(rects.map((r) => r.x));
  assert.equal(rows.size, 5);
  assert.equal(columns.size, 5);
  assert.equal(new Set(rects.map((r) => `${r.width}×${r.height}`)).size, 1);
  const [tile] = rects;
  assert.ok(Math.abs(tile.width / tile.height - 16 / 9) < 0.02);
  // As large as five rows allow: 640 − 4 gaps of 8, in five.
  assert.equal(tile.height, Math.floor(Math.floor(((640 - 32) / 5) * (16 / 9)) / (16 / 9)));
});

test("every count from 1 to 25 fits a wide box without overlap, tiles equal and centred", () => {
  for (let n = 1; n <= 25; n += 1) {
    const { rects } = arrangeTiles(n, 1200, 640);
    assert.equal(rects.length, n);
    assertNoOverlap(rects);
    inside(rects, 1200, 640);
    assert.equal(new Set(rects.map((r) => r.width)).size, 1, `n=${n}`);
    // Centred: as much room left of the widest row as right of it.
    const left = Math.min(...rects.map((r) => r.x));
    const right = 1200 - Math.max(...rects.map((r) => r.x + r.width));
    assert.ok(Math.abs(left - right) <= 1, `n=${n}: ${left} vs ${right}`);
  }
});

test("a partial last row is centred under the full ones", () => {
  const { rects } = arrangeTiles(5, 1000, 400);
  const lastRow = rects.filter((r) => r.y === Math.max(...rects.map((q) => q.y)));
  const firstRow = rects.filter((r) => r.y === 0 || r.y === Math.min(...rects.map((q) => q.y)));
  assert.ok(lastRow.length < firstRow.length);
  const mid = (row) => (Math.min(...row.map((r) => r.x)) + Math.max(...row.map((r) => r.x + r.width))) / 2;
  assert.ok(Math.abs(mid(lastRow) - mid(firstRow)) <= 1);
});

test("in a strip too short for 25 usable tiles, they keep a usable width and the content scrolls", () => {
  const { rects, height } = arrangeTiles(25, 1200, 200);
  assertNoOverlap(rects);
  assert.ok(rects.every((r) => r.width >= 120));
  assert.ok(height > 200);
  assert.ok(Math.max(...rects.map((r) => r.y + r.height)) <= height);
});

test("a featured screen share is on top, much larger than everyone else, who share the band below", () => {
  const { rects } = arrangeTiles(7, 1200, 640, { featured: 3 });
  assertNoOverlap(rects);
  inside(rects, 1200, 640);
  const stage = rects[3];
  const others = rects.filter((_, i) => i !== 3);
  for (const r of others) {
    assert.ok(r.y >= stage.y + stage.height, "below the stage");
    assert.ok(stage.width * stage.height > 8 * r.width * r.height, "much larger");
  }
  assert.ok(stage.height >= 640 * 0.6);
  assert.ok(Math.abs(stage.width / stage.height - 16 / 9) < 0.02);
});

test("a screen share among 25 still leaves every camera a tile in view", () => {
  const { rects, height } = arrangeTiles(26, 1200, 640, { featured: 0 });
  assert.equal(rects.length, 26);
  assertNoOverlap(rects);
  assert.equal(height, 640);
  inside(rects, 1200, 640);
  assert.ok(rects.slice(1).every((r) => r.width >= 48));
});

test("one tile alone, featured or not, fills the box", () => {
  assert.deepEqual(arrangeTiles(1, 1600, 450, { featured: 0 }).rects, [{ x: 400, y: 0, width: 800, height: 450 }]);
  assert.deepEqual(arrangeTiles(0, 100, 100), { rects: [], height: 0 });
});

// --- pickSpeaker: the highlighted speaker ---

test("the loudest of those speaking becomes the speaker", () => {
  assert.equal(pickSpeaker(null, [{ id: "a", level: 0.1 }, { id: "b", level: 0.3 }]), "b");
});

test("the speaker keeps the highlight against someone slightly louder, not against twice as loud", () => {
  assert.equal(pickSpeaker("a", [{ id: "a", level: 0.2 }, { id: "b", level: 0.3 }]), "a");
  assert.equal(pickSpeaker("a", [{ id: "a", level: 0.1 }, { id: "b", level: 0.3 }]), "b");
});

test("silence keeps the last speaker; someone else speaking takes over", () => {
  assert.equal(pickSpeaker("a", []), "a");
  assert.equal(pickSpeaker("a", [{ id: "c", level: 0.05 }]), "c");
});
