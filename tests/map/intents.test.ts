/**
 * The intent log (MAP.png.intents): recovery after a crash reads only the blocks of marked regions,
 * and the result is the same valid PNG a full scan gives (checked by a full verify, pngcheck and
 * upng-js). Any doubt about the log means a full scan.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { CLUSTER_SIZE, MapContainer } from '../../src/map';
import { IntentLog, MARK_AHEAD, REGION_CLUSTERS, intentPathFor, regionBlocks } from '../../src/map/intents';
import { MapLayout } from '../../src/map/layout';
import { clusterPattern, decodePng, pngcheck, refD2xy, withTempDir } from './helpers';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = withTempDir();
});
afterEach(() => tmp.cleanup());

const SIDE = 1024; // 1024 clusters = 4 regions, 129 blocks
const layout = new MapLayout(SIDE);

/** The map and its intent log as a crash would leave them, under a new name. */
function crashCopy(path: string, name: string): string {
  const to = join(tmp.dir, name);
  copyFileSync(path, to);
  if (existsSync(intentPathFor(path))) copyFileSync(intentPathFor(path), intentPathFor(to));
  return to;
}

function expectClusters(path: string, expected: Map<number, Buffer>): void {
  const m = MapContainer.open(path, { readOnly: true });
  const buf = Buffer.alloc(CLUSTER_SIZE);
  for (const [c, data] of expected) {
    m.readClusters(c, 1, buf);
    expect(buf.equals(data)).toBe(true);
  }
  m.close();
}

function flip(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x5a;
  writeSync(fd, b, 0, 1, offset);
  closeSync(fd);
}

describe('region blocks', () => {
  it('cover exactly the blocks holding the pixels of each region (independent curve)', () => {
    for (const region of [0, 2, 3]) {
      const expected = new Set<number>();
      const first = region * REGION_CLUSTERS * 1024;
      for (let d = first; d < first + REGION_CLUSTERS * 1024; d++) {
        const [x, y] = refD2xy(SIDE, d);
        const raw = layout.rawOffsetOfPixel(x, y);
        expected.add(Math.floor(raw / layout.blockPayload));
        expected.add(Math.floor((raw + 3) / layout.blockPayload));
      }
      const got = Array.from(regionBlocks(layout, [region]));
      expect(got).toEqual([...expected].sort((a, b) => a - b));
      expect(got.length).toBeLessThan(layout.blockCount);
    }
  });
});

describe('recovery from the intent log', () => {
  function makeMap(): { path: string; expected: Map<number, Buffer> } {
    const path = join(tmp.dir, 'm.png');
    const m = MapContainer.create(path, { side: SIDE });
    const expected = new Map<number, Buffer>();
    for (const c of [0, 300, 600, 1000]) {
      expected.set(c, clusterPattern(c));
      m.writeClusters(c, expected.get(c)!);
    }
    m.checkpoint({ generation: 1n, payload: Buffer.from('meta') });
    m.close();
    return { path, expected };
  }

  it('rescans only the marked regions and gives the same valid PNG as a full scan', () => {
    const { path, expected } = makeMap();
    const m = MapContainer.open(path);
    expect(m.intentStatus.inUse).toBe(true);
    for (const c of [520, 521, 700]) {
      expected.set(c, clusterPattern(c, 7));
      m.writeClusters(c, expected.get(c)!);
    }
    const crashed = crashCopy(path, 'crash.png');
    const noLog = join(tmp.dir, 'nolog.png');
    copyFileSync(path, noLog);
    m.close();

    expect(pngcheck(crashed).ok).toBe(false);
    const r = MapContainer.open(crashed);
    expect(r.needsRecovery).toBe(true);
    const report = r.repairChecksums();
    expect(report.scope).toBe('intents');
    expect(report.blocksScanned).toBe(regionBlocks(layout, [2]).length);
    expect(report.blocksScanned).toBeLessThan(report.blockCount);
    expect(report.chunksFixed).toBeGreaterThan(0);
    expect(report.adlerFixed).toBe(true);
    expect(r.verify()).toEqual({ ok: true, problems: [] });
    r.close();
    expect(pngcheck(crashed).ok).toBe(true);
    expectClusters(crashed, expected);

    // The same crash without the log: a full scan, which must produce the same file.
    const f = MapContainer.open(noLog);
    expect(f.intentStatus).toEqual({ inUse: false, reason: 'no intent log' });
    const full = f.repairChecksums();
    expect(full.scope).toBe('full');
    expect(full.blocksScanned).toBe(layout.blockCount);
    f.close();
    const a = decodePng(readFileSync(crashed));
    const b = decodePng(readFileSync(noLog));
    expect(Buffer.from(a.rgba).equals(Buffer.from(b.rgba))).toBe(true);
    // The full scan rebuilt the log: the next crash is recovered from it.
    expect(existsSync(intentPathFor(noLog))).toBe(true);
    const again = MapContainer.open(noLog);
    again.writeClusters(5, clusterPattern(5, 3));
    const crash2 = crashCopy(noLog, 'crash2.png');
    again.close();
    const r2 = MapContainer.open(crash2);
    expect(r2.repairChecksums().scope).toBe('intents');
    expect(r2.verify().ok).toBe(true);
    r2.close();
  });

  it('a writer entering the region after its last one marks MARK_AHEAD more; a random one does not', () => {
    const side = 4096; // 64 regions
    const big = new MapLayout(side);
    const path = join(tmp.dir, 'ahead.png');
    const m = MapContainer.create(path, { side });
    m.checkpoint({ generation: 1n, payload: Buffer.from('meta') });
    const at = (region: number, k = 0) => region * REGION_CLUSTERS + k;
    m.writeClusters(at(40), clusterPattern(1)); // random: 40 alone
    m.writeClusters(at(10, 255), clusterPattern(2)); // region 10
    m.writeClusters(at(11), clusterPattern(3)); // then 11, right after it: 12.. are marked too
    m.writeClusters(at(30), clusterPattern(4)); // random again: 30 alone
    const crashed = crashCopy(path, 'ahead-crash.png');
    m.close();
    const ahead = Array.from({ length: MARK_AHEAD }, (_, i) => 12 + i);
    const r = MapContainer.open(crashed);
    const report = r.repairChecksums();
    expect(report.scope).toBe('intents');
    expect(report.blocksScanned).toBe(regionBlocks(big, [10, 11, ...ahead, 30, 40]).length);
    expect(r.verify().ok).toBe(true);
    r.close();
    expect(pngcheck(crashed).ok).toBe(true);
  });

  it('a new epoch starts with no marks: the previous epoch’s regions are not rescanned', () => {
    const { path } = makeMap();
    const m = MapContainer.open(path);
    m.writeClusters(800, clusterPattern(800, 1)); // region 3
    m.checkpoint();
    m.writeClusters(10, clusterPattern(10, 1)); // region 0
    const crashed = crashCopy(path, 'crash.png');
    m.close();
    const r = MapContainer.open(crashed);
    const report = r.repairChecksums();
    expect(report.scope).toBe('intents');
    expect(report.blocksScanned).toBe(regionBlocks(layout, [0]).length);
    expect(r.verify().ok).toBe(true);
    r.close();
  });

  it('a block damaged outside the marked regions is left to fsck, not silently trusted as repaired', () => {
    // This shows the scan really is partial: a full verify still sees damage the intent scan skipped.
    const { path } = makeMap();
    const m = MapContainer.open(path);
    m.writeClusters(10, clusterPattern(10, 2)); // region 0
    const crashed = crashCopy(path, 'crash.png');
    m.close();
    const outside = regionBlocks(layout, [3]).find((b) => !regionBlocks(layout, [0]).includes(b))!;
    flip(crashed, layout.blockChunkOffset(outside) + 20);
    const r = MapContainer.open(crashed);
    expect(r.repairChecksums().scope).toBe('intents');
    const codes = r.verify().problems.map((p) => p.code);
    expect(codes).toContain('IMAP_E_CORRUPT_CHUNK');
    r.close();
  });

  it.each([
    ['deleted', (p: string) => unlinkSync(intentPathFor(p)), 'no intent log'],
    [
      'with a flipped table byte',
      (p: string) => flip(intentPathFor(p), IntentLog.tableOffset(layout) + 9),
      'CRC',
    ],
    ['with a flipped header byte', (p: string) => flip(intentPathFor(p), 33), 'CRC'],
  ])('a log %s is rejected: full scan, still valid', (_name, damage, reason) => {
    const { path, expected } = makeMap();
    const m = MapContainer.open(path);
    expected.set(40, clusterPattern(40, 5));
    m.writeClusters(40, expected.get(40)!);
    const crashed = crashCopy(path, 'crash.png');
    m.close();
    damage(crashed);
    const r = MapContainer.open(crashed);
    expect(r.intentStatus.inUse).toBe(false);
    expect(r.intentStatus.reason).toContain(reason);
    expect(r.repairChecksums().scope).toBe('full');
    expect(r.verify().ok).toBe(true);
    r.close();
    expectClusters(crashed, expected);
  });

  it('a log from another generation (a map restored from an older copy) is rejected', () => {
    const { path } = makeMap();
    const older = join(tmp.dir, 'older.png');
    copyFileSync(path, older);
    const m = MapContainer.open(path);
    m.writeClusters(600, clusterPattern(600, 4));
    m.checkpoint();
    m.close();
    // The old PNG comes back next to the newer log; then the map is written and crashes.
    copyFileSync(intentPathFor(path), intentPathFor(older));
    const o = MapContainer.open(older);
    expect(o.intentStatus.reason).toMatch(/generation/);
    expect(existsSync(intentPathFor(older))).toBe(false);
    o.writeClusters(100, clusterPattern(100, 4));
    const crashed = crashCopy(older, 'crash.png');
    o.close();
    const r = MapContainer.open(crashed);
    expect(r.repairChecksums().scope).toBe('full');
    expect(r.verify().ok).toBe(true);
    r.close();
  });

  it('after growth the log has the new geometry and still serves recovery', () => {
    const { path, expected } = makeMap();
    const m = MapContainer.open(path);
    m.grow(2048);
    expected.set(3000, clusterPattern(3000, 6));
    m.writeClusters(3000, expected.get(3000)!);
    const crashed = crashCopy(path, 'crash.png');
    m.close();
    const r = MapContainer.open(crashed);
    const report = r.repairChecksums();
    expect(report.scope).toBe('intents');
    expect(report.blocksScanned).toBeLessThan(report.blockCount / 4);
    expect(r.verify().ok).toBe(true);
    r.close();
    expect(pngcheck(crashed).ok).toBe(true);
    expectClusters(crashed, expected);
  });

  it('random epochs of writes, checkpoints and crashes always recover to a valid map', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const { path, expected } = makeMap();
    const m = MapContainer.open(path);
    for (let round = 0; round < 12; round++) {
      const writes = 1 + rand(6);
      for (let i = 0; i < writes; i++) {
        const c = rand(layout.clusterCount - 4);
        const n = 1 + rand(4);
        const data = Buffer.alloc(n * CLUSTER_SIZE);
        for (let k = 0; k < n; k++) {
          const d = clusterPattern(c + k, round + 1);
          d.copy(data, k * CLUSTER_SIZE);
          expected.set(c + k, d);
        }
        m.writeClusters(c, data);
      }
      const crashed = crashCopy(path, `crash-${round}.png`);
      const r = MapContainer.open(crashed);
      const report = r.repairChecksums();
      expect(report.scope).toBe('intents');
      expect(r.verify()).toEqual({ ok: true, problems: [] });
      r.close();
      expectClusters(crashed, expected);
      if (rand(2) === 0) m.checkpoint();
    }
    m.close();
  });
});
