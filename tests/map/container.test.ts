import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CLUSTER_SIZE, MapContainer } from '../../src/map';
import { ImapError } from '../../src/protocol/errors';
import { clusterPattern, decodePng, pngcheck, refD2xy, seededRandom, withTempDir } from './helpers';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = withTempDir();
});
afterEach(() => tmp.cleanup());

/** Byte b of cluster c, found by the independent d2xy in the decoded RGBA. */
function byteAtPixel(rgba: Uint8Array, side: number, c: number, b: number): number {
  const [x, y] = refD2xy(side, c * 1024 + (b >> 2));
  return rgba[(y * side + x) * 4 + (b & 3)];
}

/** Two fresh maps with one uuid, so the same writes and checkpoints give the same bytes. */
function twinMaps(a: string, b: string, side: number): { paths: string[]; maps: MapContainer[] } {
  const paths = [join(tmp.dir, `${a}.png`), join(tmp.dir, `${b}.png`)];
  const uuid = '0b6c1e9e-6a7b-4c1d-9f3e-2a5b8c7d6e4f';
  return { paths, maps: paths.map((p) => MapContainer.create(p, { side, uuid })) };
}

/** Closes both; both verify, the second passes pngcheck and decodes, and they match byte for byte. */
function expectSameValidMaps(paths: string[], maps: MapContainer[], side: number): void {
  for (const m of maps) {
    expect(m.verify().ok).toBe(true);
    m.close();
  }
  const [a, b] = paths.map((p) => readFileSync(p));
  // createdMs differs between the two superblocks; everything else must match byte for byte.
  const sbEnd = 33 + 12 + 64;
  expect(a!.subarray(sbEnd).equals(b!.subarray(sbEnd))).toBe(true);
  expect(pngcheck(paths[1]!).ok).toBe(true);
  expect(decodePng(b!).width).toBe(side);
}

describe('MapContainer', () => {
  it('sideForCapacity picks the smallest power of two side', () => {
    expect(MapContainer.sideForCapacity(0)).toBe(32);
    expect(MapContainer.sideForCapacity(4096)).toBe(32);
    expect(MapContainer.sideForCapacity(4 * 32 * 32 + 1)).toBe(64);
    expect(MapContainer.sideForCapacity(256 << 20)).toBe(8192);
    expect(() => MapContainer.sideForCapacity(-1)).toThrow(ImapError);
  });

  it.each([32, 256, 1024])('mkfs %i² is sparse, passes pngcheck and decodes to zeros', (side) => {
    const path = join(tmp.dir, 'm.png');
    const m = MapContainer.create(path, { side });
    expect(m.clusterCount).toBe((side * side) / 1024);
    expect(m.superblock.state).toBe('clean');
    m.close();
    const check = pngcheck(path);
    expect(check.output).toContain('No errors detected');
    expect(check.ok).toBe(true);
    const img = decodePng(readFileSync(path));
    expect([img.width, img.height]).toEqual([side, side]);
    expect(img.rgba.every((v) => v === 0)).toBe(true);
    const st = statSync(path);
    if (side >= 1024) expect(st.blocks * 512).toBeLessThan(st.size / 2);
  });

  it('known bytes land at the pixels the Hilbert curve names (upng-js decode)', () => {
    const side = 256;
    const path = join(tmp.dir, 'm.png');
    const m = MapContainer.create(path, { side });
    const clusters = [0, 1, 7, 8, 9, 33, 63];
    for (const c of clusters) m.writeClusters(c, clusterPattern(c));
    // A run across several tiles, too.
    const run = Buffer.concat([clusterPattern(20), clusterPattern(21), clusterPattern(22)]);
    m.writeClusters(20, run);
    m.checkpoint({ generation: 3n, payload: Buffer.from('{"files":1}') });
    m.close();
    expect(pngcheck(path).ok).toBe(true);
    const img = decodePng(readFileSync(path));
    for (const c of [...clusters, 20, 21, 22]) {
      const want = clusterPattern(c);
      for (let b = 0; b < CLUSTER_SIZE; b++) {
        if (byteAtPixel(img.rgba, side, c, b) !== want[b])
          throw new Error(`cluster ${c} byte ${b} not at its pixel`);
      }
    }
    // Untouched clusters decode as zeros.
    for (let b = 0; b < CLUSTER_SIZE; b++) expect(byteAtPixel(img.rgba, side, 2, b)).toBe(0);
    const again = MapContainer.open(path, { readOnly: true });
    expect(again.readMetadataChunk()).toEqual({ generation: 3n, payload: Buffer.from('{"files":1}') });
    expect(again.superblock.generation).toBe(1n);
    expect(again.verify().ok).toBe(true);
    again.close();
  });

  it.each([32, 64, 128, 512, 1024, 4096])('read-back equals write for random runs on side %i', (side) => {
    const path = join(tmp.dir, 'm.png');
    const m = MapContainer.create(path, { side });
    const rnd = seededRandom(side);
    const shadow = new Map<number, Buffer>();
    for (let k = 0; k < 12; k++) {
      const count = 1 + Math.floor(rnd() * Math.min(m.clusterCount, 300));
      const first = Math.floor(rnd() * (m.clusterCount - count + 1));
      // Odd offsets exercise the unaligned bounce path.
      const off = k % 3;
      const data = Buffer.alloc(off + count * CLUSTER_SIZE);
      for (let i = 0; i < count; i++) {
        const p = clusterPattern(first + i, k);
        p.copy(data, off + i * CLUSTER_SIZE);
        shadow.set(first + i, p);
      }
      m.writeClusters(first, data, off, count);
      const back = Buffer.alloc(count * CLUSTER_SIZE + 1);
      m.readClusters(first, count, back, 1);
      expect(back.subarray(1).equals(data.subarray(off))).toBe(true);
      if (k === 6) m.checkpoint();
    }
    m.checkpoint();
    const all = Buffer.alloc(m.clusterCount * CLUSTER_SIZE);
    m.readClusters(0, m.clusterCount, all);
    const zero = Buffer.alloc(CLUSTER_SIZE);
    for (let c = 0; c < m.clusterCount; c++) {
      const got = all.subarray(c * CLUSTER_SIZE, (c + 1) * CLUSTER_SIZE);
      if (!got.equals(shadow.get(c) ?? zero)) throw new Error(`cluster ${c} differs`);
    }
    expect(m.verify().ok).toBe(true);
    m.close();
    expect(pngcheck(path).ok).toBe(true);
  });

  it('grows twice keeping cluster numbers, bytes and pixel positions', () => {
    const path = join(tmp.dir, 'm.png');
    const m = MapContainer.create(path, { side: 64 });
    for (let c = 0; c < m.clusterCount; c++) m.writeClusters(c, clusterPattern(c));
    m.checkpoint({ generation: 9n, payload: Buffer.from('meta') });
    const before = decodePng(readFileSync(path));
    m.grow(128);
    expect(m.side).toBe(128);
    m.grow(256);
    expect(m.clusterCount).toBe(64);
    const back = Buffer.alloc(4 * CLUSTER_SIZE);
    m.readClusters(0, 4, back);
    for (let c = 0; c < 4; c++)
      expect(back.subarray(c * CLUSTER_SIZE, (c + 1) * CLUSTER_SIZE).equals(clusterPattern(c))).toBe(true);
    expect(m.readMetadataChunk()?.payload.toString()).toBe('meta');
    expect(m.verify().ok).toBe(true);
    // New clusters are writable after growth.
    m.writeClusters(50, clusterPattern(50));
    m.checkpoint();
    m.close();
    expect(pngcheck(path).ok).toBe(true);
    const after = decodePng(readFileSync(path));
    expect(after.width).toBe(256);
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        for (let ch = 0; ch < 4; ch++) {
          if (after.rgba[(y * 256 + x) * 4 + ch] !== before.rgba[(y * 64 + x) * 4 + ch]) {
            throw new Error(`pixel (${x},${y}) moved`);
          }
        }
      }
    }
    for (let b = 0; b < CLUSTER_SIZE; b++)
      expect(byteAtPixel(after.rgba, 256, 50, b)).toBe(clusterPattern(50)[b]);
  });

  it('rejects bad arguments with ImapError, never a raw TypeError/RangeError', () => {
    const path = join(tmp.dir, 'm.png');
    const m = MapContainer.create(path, { side: 32 });
    const buf = Buffer.alloc(CLUSTER_SIZE);
    const bad: (() => unknown)[] = [
      () => m.readClusters(1, 1, buf),
      () => m.readClusters(-1, 1, buf),
      () => m.readClusters(0, 2, buf),
      () => m.readClusters(0.5, 1, buf),
      () => m.readClusters(0, 1, 'x' as unknown as Buffer),
      () => m.writeClusters(0, buf, 1, 1),
      () => m.grow(48),
      () => m.grow(32),
      () => MapContainer.create(join(tmp.dir, 'x.png'), { side: 100 }),
      () => MapContainer.create(path, { side: 32 }),
      () => MapContainer.create(join(tmp.dir, 'y.png'), { side: 32, uuid: 'nope' }),
      () => m.checkpoint({ generation: 1 as unknown as bigint, payload: Buffer.alloc(0) }),
    ];
    for (const f of bad) {
      let caught: unknown;
      try {
        f();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ImapError);
    }
    m.close();
    const ro = MapContainer.open(path, { readOnly: true });
    expect(() => ro.writeClusters(0, buf)).toThrow(expect.objectContaining({ code: 'IMAP_E_READ_ONLY' }));
    ro.close();
    expect(() => ro.readClusters(0, 1, buf)).toThrow(ImapError);
  });
  it('checkpointAsync (block pass on pool threads) writes the same bytes as checkpoint', async () => {
    const { paths, maps } = twinMaps('sync', 'async', 1024);
    const rnd = seededRandom(77);
    // Two epochs of scattered runs: blocks written in both, in one, and blocks split between runs.
    for (let epoch = 0; epoch < 2; epoch++) {
      for (let k = 0; k < 40; k++) {
        const count = 1 + Math.floor(rnd() * 120);
        const first = Math.floor(rnd() * (maps[0].clusterCount - count + 1));
        const data = Buffer.alloc(count * CLUSTER_SIZE);
        for (let i = 0; i < count; i++)
          clusterPattern(first + i, 10 * epoch + k).copy(data, i * CLUSTER_SIZE);
        for (const m of maps) await m.writeClustersAsync(first, data, 0, count);
      }
      const meta = { generation: BigInt(epoch + 5), payload: Buffer.from(`epoch ${epoch}`) };
      maps[0].checkpoint(meta);
      await maps[1].checkpointAsync(meta);
    }
    expectSameValidMaps(paths, maps, 1024);
  });

  it('prefixAsync alongside writes, then checkpointAsync: the same bytes as one checkpoint', async () => {
    const { paths, maps } = twinMaps('plain', 'prefixed', 4096);
    const rnd = seededRandom(91);
    const batch = (tag: number) =>
      Array.from({ length: 30 }, (_, k) => {
        const count = 1 + Math.floor(rnd() * 200);
        const first = Math.floor(rnd() * (maps[0].clusterCount - count + 1));
        const data = Buffer.alloc(count * CLUSTER_SIZE);
        for (let i = 0; i < count; i++) clusterPattern(first + i, tag + k).copy(data, i * CLUSTER_SIZE);
        return { first, count, data };
      });
    for (let epoch = 0; epoch < 2; epoch++) {
      const before = batch(100 * epoch);
      const during = batch(100 * epoch + 50);
      for (const w of [...before, ...during]) await maps[0].writeClustersAsync(w.first, w.data, 0, w.count);
      for (const w of before) await maps[1].writeClustersAsync(w.first, w.data, 0, w.count);
      // Writes race the pass: the first half marked their blocks before it took its list and land
      // while it reads; the rest mark them after. Many land in blocks it is reading or has fixed.
      const write = (w: (typeof during)[number]) => maps[1].writeClustersAsync(w.first, w.data, 0, w.count);
      const half = during.length / 2;
      const early = during.slice(0, half).map(write);
      await new Promise((resolve) => setImmediate(resolve)); // their marks are made, bytes in flight
      await Promise.all([...early, maps[1].prefixAsync(), ...during.slice(half).map(write)]);
      const meta = { generation: BigInt(epoch + 9), payload: Buffer.from(`epoch ${epoch}`) };
      maps[0].checkpoint(meta);
      await maps[1].checkpointAsync(meta);
    }
    expectSameValidMaps(paths, maps, 4096);
    // The intent log got every fixed block's new sums: a reopened map marked dirty needs no full scan.
    const reopened = MapContainer.open(paths[1]);
    expect(reopened.needsRecovery).toBe(false);
    reopened.close();
  });
});
