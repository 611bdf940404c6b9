// The call panel's tiles fill the space they are given: as many columns as make each 16:9 tile
// the largest that fits (one person: one large tile; four: two by two), as Discord lays them out.

const ASPECT = 16 / 9;
const GAP_PX = 8;
const MIN_WIDTH_PX = 120;

/**
 * The widest tile (px) and its column count for `count` tiles in a `width` × `height` box.
 * @param {number} count
 * @param {number} width
 * @param {number} height
 * @returns {{columns: number, tileWidth: number}}
 */
export function tileLayout(count, width, height, gap = GAP_PX, aspect = ASPECT) {
  let best = { columns: 1, tileWidth: 0 };
  const n = Math.max(1, count);
  for (let columns = 1; columns <= n; columns += 1) {
    const rows = Math.ceil(n / columns);
    const byWidth = (width - (columns - 1) * gap) / columns;
    const byHeight = ((height - (rows - 1) * gap) / rows) * aspect;
    const tileWidth = Math.floor(Math.min(byWidth, byHeight));
    if (tileWidth > best.tileWidth) best = { columns, tileWidth };
  }
  return { columns: best.columns, tileWidth: Math.max(MIN_WIDTH_PX, best.tileWidth) };
}

/**
 * Keep the tiles of `grid` sized by tileLayout as the grid resizes or gains or loses tiles:
 * the width goes into the CSS variable --tile-width (calls.css).
 * @param {HTMLElement} grid
 */
export function fitTiles(grid) {
  const apply = () => {
    const { width, height } = grid.getBoundingClientRect();
    if (!width || !height) return;
    const { tileWidth } = tileLayout(grid.childElementCount, width, height);
    grid.style.setProperty("--tile-width", `${tileWidth}px`);
  };
  new ResizeObserver(apply).observe(grid);
  new MutationObserver(apply).observe(grid, { childList: true });
  return apply;
}
