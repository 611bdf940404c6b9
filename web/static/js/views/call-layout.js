// The call panel's tiles fill the space they are given, as Discord lays them out: with nothing
// featured, a grid of equal 16:9 tiles, as many columns as make each the largest that fits (one
// person: one large tile; four: two by two; 25: five by five). A screen share is featured: it
// takes the top of the box, as large as fits, and everyone else shares a grid in a band below.
// The speaker is the loudest of those speaking now, and stays the speaker until someone else
// speaks louder (pickSpeaker). Everything here is pure but fitTiles, which applies a layout to
// the page.

const ASPECT = 16 / 9;
const GAP_PX = 8;
const MIN_WIDTH_PX = 120;
// With a featured tile, the others' band takes this share of the height (at least BAND_MIN_PX).
const BAND_SHARE = 0.25;
const BAND_MIN_PX = 80;
const BAND_TILE_MIN_PX = 48;

/**
 * The widest tile (px) and its column count for `count` tiles in a `width` × `height` box.
 * @param {number} count
 * @param {number} width
 * @param {number} height
 * @returns {{columns: number, tileWidth: number}}
 */
export function tileLayout(count, width, height, gap = GAP_PX, aspect = ASPECT, minWidth = MIN_WIDTH_PX) {
  let best = { columns: 1, tileWidth: 0 };
  const n = Math.max(1, count);
  for (let columns = 1; columns <= n; columns += 1) {
    const rows = Math.ceil(n / columns);
    const byWidth = (width - (columns - 1) * gap) / columns;
    const byHeight = ((height - (rows - 1) * gap) / rows) * aspect;
    const tileWidth = Math.floor(Math.min(byWidth, byHeight));
    if (tileWidth > best.tileWidth) best = { columns, tileWidth };
  }
  if (best.tileWidth >= minWidth) return best;
  // Too small to be of use: as many columns of the smallest usable width as fit, and the box
  // scrolls.
  return { columns: Math.max(1, Math.min(n, Math.floor((width + gap) / (minWidth + gap)))), tileWidth: minWidth };
}

/**
 * @typedef {{x: number, y: number, width: number, height: number}} Rect
 */

/**
 * `count` equal tiles in rows of `columns`, each row centred, the whole centred vertically in
 * `height` when it fits (else from the top: the box scrolls).
 * @returns {{rects: Rect[], height: number}}
 */
function gridRects(count, columns, tileWidth, width, height, top, gap, aspect) {
  const tileHeight = Math.floor(tileWidth / aspect);
  const rows = Math.ceil(count / columns);
  const used = rows * tileHeight + (rows - 1) * gap;
  const y0 = top + Math.max(0, Math.floor((height - used) / 2));
  const rects = [];
  for (let i = 0; i < count; i += 1) {
    const row = Math.floor(i / columns);
    const inRow = Math.min(columns, count - row * columns);
    const rowWidth = inRow * tileWidth + (inRow - 1) * gap;
    const x0 = Math.max(0, Math.floor((width - rowWidth) / 2));
    rects.push({ x: x0 + (i % columns) * (tileWidth + gap), y: y0 + row * (tileHeight + gap), width: tileWidth, height: tileHeight });
  }
  return { rects, height: Math.max(height, y0 - top + used) };
}

/**
 * Where each of `count` tiles goes in a `width` × `height` box: with `featured` (an index) that
 * tile on top, as large as fits in the height the band below leaves; the others in a grid in
 * that band. `height` is what the content needs (more than the box's when it must scroll).
 * @param {number} count
 * @param {number} width
 * @param {number} height
 * @param {{featured?: number, gap?: number, aspect?: number, minWidth?: number}} [options]
 * @returns {{rects: Rect[], height: number}}
 */
export function arrangeTiles(count, width, height, { featured = -1, gap = GAP_PX, aspect = ASPECT, minWidth = MIN_WIDTH_PX } = {}) {
  if (count <= 0) return { rects: [], height: 0 };
  if (featured < 0 || featured >= count || count === 1) {
    const { columns, tileWidth } = tileLayout(count, width, height, gap, aspect, minWidth);
    return gridRects(count, columns, tileWidth, width, height, 0, gap, aspect);
  }
  const band = Math.max(BAND_MIN_PX, Math.floor(height * BAND_SHARE));
  const stageHeight = Math.max(BAND_MIN_PX, height - band - gap);
  const stageWidth = Math.min(width, Math.floor(stageHeight * aspect));
  const stage = {
    x: Math.floor((width - stageWidth) / 2),
    y: 0,
    width: stageWidth,
    height: Math.floor(stageWidth / aspect),
  };
  const others = count - 1;
  // The band's tiles may be smaller than the grid's: a face and a name still show at 48 px.
  const { columns, tileWidth } = tileLayout(others, width, band, gap, aspect, BAND_TILE_MIN_PX);
  const grid = gridRects(others, columns, tileWidth, width, band, stage.height + gap, gap, aspect);
  const rects = [...grid.rects];
  rects.splice(featured, 0, stage);
  return { rects, height: Math.max(height, stage.height + gap + grid.height) };
}

/**
 * The speaker to highlight: of those speaking now ([{id, level}]), the loudest; the current
 * speaker keeps the highlight while they are still speaking at half the loudest level or more,
 * and after they stop until someone else speaks (no flicker between words).
 * @param {string | null} current
 * @param {{id: string, level: number}[]} speaking
 * @returns {string | null}
 */
export function pickSpeaker(current, speaking) {
  if (speaking.length === 0) return current;
  const loudest = speaking.reduce((a, b) => (b.level > a.level ? b : a));
  const mine = speaking.find((s) => s.id === current);
  if (mine && mine.level * 2 >= loudest.level) return current;
  return loudest.id;
}

/**
 * Keep the tiles of `grid` placed by arrangeTiles as the grid resizes or gains or loses tiles;
 * the child with class `featured` is the featured tile. Tiles are positioned absolutely
 * (calls.css), so a grid that overflows scrolls. Returns the function that applies the layout now (after a tile became featured).
 * @param {HTMLElement} grid
 */
export function fitTiles(grid) {
  let applied = "";
  const apply = () => {
    const width = grid.clientWidth;
    const height = grid.clientHeight;
    if (!width || !height) return;
    const children = /** @type {HTMLElement[]} */ ([...grid.children]);
    const featured = children.findIndex((child) => child.classList.contains("featured"));
    // The same tiles in the same box: nothing to move (render() asks after every change).
    const key = `${width}×${height}:${featured}:${children.map((child) => child.dataset.peer).join(",")}`;
    if (key === applied && children.every((child) => child.style.width)) return;
    applied = key;
    const layout = arrangeTiles(children.length, width, height, { featured });
    children.forEach((child, i) => {
      const { x, y, width: w, height: h } = layout.rects[i];
      child.style.left = `${x}px`;
      child.style.top = `${y}px`;
      child.style.width = `${w}px`;
      child.style.height = `${h}px`;
    });
  };
  new ResizeObserver(apply).observe(grid);
  new MutationObserver(apply).observe(grid, { childList: true });
  return apply;
}
