/**
 * Hilbert geometry of the map: where a curve index lands in the image, and where a cluster's
 * 32×32 tile sits and in which of the 8 dihedral orientations.
 *
 * Orientation rule (format v1): the map of order k (side 2^k) uses the classic d2xy curve when k is
 * even and its transpose (x↔y) when k is odd. The classic curve of order k+1 restricted to its first
 * quarter is the transposed curve of order k, so with this rule the first quarter of order k+1 is
 * exactly the curve of order k: doubling the side never moves an existing pixel.
 *
 * Every aligned run of 1024 indices (one cluster) fills one aligned 32×32 tile, and the curve inside
 * that tile is the base curve (classic order 5) under one of the 8 symmetries of the square. We
 * precompute the 8 resulting index→pixel tables once and place a tile with three d2xy evaluations,
 * so no code path walks the curve per byte.
 */

export const TILE_SIDE = 32;
export const TILE_ORDER = 5;
export const TILE_PIXELS = TILE_SIDE * TILE_SIDE;

/**
 * Classic d2xy (as in Hacker's Delight / Wikipedia), starting at (0,0) and ending at (n-1,0).
 * Uses arithmetic instead of bit operations on `d`, because indices reach 2^32 on the largest maps.
 * Writes x to out[0] and y to out[1] so hot callers need no allocation.
 */
export function d2xyClassic(order: number, d: number, out: Int32Array): void {
  const n = 2 ** order;
  let x = 0;
  let y = 0;
  let t = d;
  for (let s = 1; s < n; s *= 2) {
    const q = t % 4;
    const rx = (q >> 1) & 1;
    const ry = (q ^ rx) & 1;
    if (ry === 0) {
      if (rx === 1) {
        x = s - 1 - x;
        y = s - 1 - y;
      }
      const tmp = x;
      x = y;
      y = tmp;
    }
    x += s * rx;
    y += s * ry;
    t = Math.floor(t / 4);
  }
  out[0] = x;
  out[1] = y;
}

/** The map's curve (the orientation rule above): pixel of curve index `d` on a map of side 2^order. */
export function curveXY(order: number, d: number, out: Int32Array): void {
  d2xyClassic(order, d, out);
  if (order % 2 === 1) {
    const tmp = out[0];
    out[0] = out[1];
    out[1] = tmp;
  }
}

/** Base-curve index of the local corner (0,31); (0,0) is index 0 and (31,0) is index 1023. */
const CORNER_C_INDEX: number = (() => {
  const xy = new Int32Array(2);
  for (let i = 0; i < TILE_PIXELS; i++) {
    d2xyClassic(TILE_ORDER, i, xy);
    if (xy[0] === 0 && xy[1] === TILE_SIDE - 1) return i;
  }
  throw new Error('unreachable: the base curve visits every pixel');
})();

/** Orientation id from the images u, v of the base axes (each a unit axis vector). */
function orientationId(ux: number, uy: number, vx: number, vy: number): number {
  // u: 0 = +x, 1 = -x, 2 = +y, 3 = -y; v is then one of the two perpendicular directions.
  const uIndex = ux === 1 ? 0 : ux === -1 ? 1 : uy === 1 ? 2 : 3;
  const vPositive = vx + vy > 0 ? 0 : 1;
  return uIndex * 2 + vPositive;
}

/**
 * ORIENTATION_LUT[o * 1024 + i] = pixel index (ly * 32 + lx) inside the tile of local curve index i,
 * for orientation o. Built from the base curve B: local(i) = corner + B(i).x · u + B(i).y · v.
 */
export const ORIENTATION_LUT: Uint16Array = (() => {
  const lut = new Uint16Array(8 * TILE_PIXELS);
  const base = new Int32Array(2 * TILE_PIXELS);
  const xy = new Int32Array(2);
  for (let i = 0; i < TILE_PIXELS; i++) {
    d2xyClassic(TILE_ORDER, i, xy);
    base[2 * i] = xy[0];
    base[2 * i + 1] = xy[1];
  }
  const axes: [number, number][] = [
    [1, 0],
    [-1, 0],
    [0, 1],
    [0, -1],
  ];
  const last = TILE_SIDE - 1;
  for (const [ux, uy] of axes) {
    for (const [vx, vy] of axes) {
      if (ux * vx + uy * vy !== 0) continue;
      const o = orientationId(ux, uy, vx, vy);
      // The local corner where B = (0,0) lands: 31 on each axis that runs backwards.
      const cx = ux < 0 || vx < 0 ? last : 0;
      const cy = uy < 0 || vy < 0 ? last : 0;
      for (let i = 0; i < TILE_PIXELS; i++) {
        const bx = base[2 * i];
        const by = base[2 * i + 1];
        const lx = cx + bx * ux + by * vx;
        const ly = cy + bx * uy + by * vy;
        lut[o * TILE_PIXELS + i] = ly * TILE_SIDE + lx;
      }
    }
  }
  return lut;
})();

/** Where a tile sits: its top-left pixel and the LUT orientation of its curve. */
export interface TilePlacement {
  x0: number;
  y0: number;
  orientation: number;
}

const p0 = new Int32Array(2);
const pB = new Int32Array(2);
const pC = new Int32Array(2);

/**
 * Places tile `tile` (= cluster number) on a map of side 2^order (order ≥ 5) with three curve
 * evaluations, O(order). Writes x0, y0, orientation into out[at], out[at+1], out[at+2].
 */
export function placeTile(order: number, tile: number, out: Int32Array, at = 0): void {
  const start = tile * TILE_PIXELS;
  curveXY(order, start, p0);
  curveXY(order, start + TILE_PIXELS - 1, pB);
  curveXY(order, start + CORNER_C_INDEX, pC);
  const last = TILE_SIDE - 1;
  const ux = (pB[0] - p0[0]) / last;
  const uy = (pB[1] - p0[1]) / last;
  const vx = (pC[0] - p0[0]) / last;
  const vy = (pC[1] - p0[1]) / last;
  out[at] = p0[0] + Math.min(0, last * ux) + Math.min(0, last * vx);
  out[at + 1] = p0[1] + Math.min(0, last * uy) + Math.min(0, last * vy);
  out[at + 2] = orientationId(ux, uy, vx, vy);
}

/** Convenience form of placeTile for tests and tools (allocates). */
export function tilePlacement(order: number, tile: number): TilePlacement {
  const out = new Int32Array(3);
  placeTile(order, tile, out);
  return { x0: out[0], y0: out[1], orientation: out[2] };
}

/** log2 of a power of two side. */
export function orderOfSide(side: number): number {
  return Math.round(Math.log2(side));
}
