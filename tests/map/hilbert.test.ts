import { ORIENTATION_LUT, TILE_PIXELS, curveXY, placeTile, tilePlacement } from '../../src/map/hilbert';
import { refD2xy, seededRandom } from './helpers';

describe('Hilbert curve', () => {
  it.each([32, 64, 128, 256])('is a bijection onto the %i² square', (side) => {
    const order = Math.log2(side);
    const seen = new Uint8Array(side * side);
    const xy = new Int32Array(2);
    for (let d = 0; d < side * side; d++) {
      curveXY(order, d, xy);
      if (xy[0] < 0 || xy[0] >= side || xy[1] < 0 || xy[1] >= side) throw new Error(`index ${d} off the map`);
      seen[xy[1] * side + xy[0]]++;
    }
    expect(seen.every((v) => v === 1)).toBe(true);
  });

  it('is local: consecutive indices are 4-neighbours', () => {
    const order = 8;
    const a = new Int32Array(2);
    const b = new Int32Array(2);
    curveXY(order, 0, a);
    expect([a[0], a[1]]).toEqual([0, 0]);
    for (let d = 1; d < 256 * 256; d++) {
      curveXY(order, d, b);
      if (Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) !== 1) throw new Error(`jump at index ${d}`);
      a.set(b);
    }
  });

  it('matches the textbook d2xy plus the orientation rule', () => {
    const xy = new Int32Array(2);
    const rnd = seededRandom(7);
    for (const side of [32, 64, 1024, 65536]) {
      for (let k = 0; k < 2000; k++) {
        const d = Math.floor(rnd() * side * side);
        curveXY(Math.log2(side), d, xy);
        const [x, y] = refD2xy(side, d);
        if (xy[0] !== x || xy[1] !== y) throw new Error(`side ${side} index ${d}`);
      }
    }
  });

  it('growth keeps every pixel: order n+1 restricted to its first quarter equals order n', () => {
    const a = new Int32Array(2);
    const b = new Int32Array(2);
    for (let order = 5; order <= 9; order++) {
      const n = 2 ** order;
      for (let d = 0; d < n * n; d++) {
        curveXY(order, d, a);
        curveXY(order + 1, d, b);
        if (a[0] !== b[0] || a[1] !== b[1]) throw new Error(`order ${order} index ${d} moved`);
      }
    }
    // And across several doublings for sampled indices of a big map.
    const rnd = seededRandom(3);
    for (let k = 0; k < 5000; k++) {
      const d = Math.floor(rnd() * 4096 * 4096);
      curveXY(12, d, a);
      for (let order = 13; order <= 16; order++) {
        curveXY(order, d, b);
        if (a[0] !== b[0] || a[1] !== b[1]) throw new Error(`index ${d} moved at order ${order}`);
      }
    }
  });

  it('a cluster is one aligned 32×32 tile, and the orientation LUT equals per-index d2xy', () => {
    const rnd = seededRandom(11);
    const out = new Int32Array(3);
    const orientations = new Set<number>();
    for (const side of [32, 64, 128, 512, 4096, 65536]) {
      const clusters = (side / 32) ** 2;
      for (let k = 0; k < 40; k++) {
        const c = k === 0 ? clusters - 1 : Math.floor(rnd() * clusters);
        placeTile(Math.log2(side), c, out);
        const [x0, y0, o] = out;
        orientations.add(o);
        expect(x0 % 32).toBe(0);
        expect(y0 % 32).toBe(0);
        for (let i = 0; i < TILE_PIXELS; i++) {
          const p = ORIENTATION_LUT[o * TILE_PIXELS + i];
          const [x, y] = refD2xy(side, c * 1024 + i);
          if (x !== x0 + (p % 32) || y !== y0 + Math.floor(p / 32)) {
            throw new Error(
              `side ${side} cluster ${c} index ${i}: LUT (${x0 + (p % 32)},${y0 + (p >> 5)}) vs (${x},${y})`,
            );
          }
        }
      }
    }
    expect(orientations.size).toBeGreaterThanOrEqual(4);
  });

  it('tilePlacement of cluster 0 is the origin', () => {
    expect(tilePlacement(5, 0)).toMatchObject({ x0: 0, y0: 0 });
  });
});
