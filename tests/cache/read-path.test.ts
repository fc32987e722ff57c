/**
 * The cached read path on real scheduler, journal and cache actors over a real map (no FUSE):
 * bytes are right on misses and hits, writes/truncates/unlinks invalidate, prefetch triggers on
 * sequential and strided reads and not on random ones, and warming loads the recorded set.
 */
import * as fs from 'node:fs';
import { CachedReader, invalidateRuns } from '../../src/fuse/cached-read';
import { CLUSTER_SIZE } from '../../src/fs/types';
import type { CacheStats } from '../../src/protocol/cache';
import { startDaemon, textCluster, type Daemon } from './helpers';

const MiB = 1 << 20;
const ROOT = { pid: 1, uid: 0, gid: 0 };

function fileOf(clusters: number, seed: number): Buffer {
  return Buffer.concat(Array.from({ length: clusters }, (_, i) => textCluster(seed * 100_000 + i)));
}

async function readAll(reader: CachedReader, ino: number, offset: number, size: number): Promise<Buffer> {
  let out = Buffer.alloc(0);
  await reader.read(ino, size, offset, ROOT, (data, off, len) => {
    out = data ? Buffer.from(data.subarray(off, off + len)) : Buffer.alloc(0);
  });
  return out;
}

const stats = (d: Daemon): Promise<CacheStats> => d.cache.request('stats', {});

/** The write-behind flush and the truncate path, with the invalidation where the lead puts it. */
async function overwrite(d: Daemon, ino: number, offset: number, data: Buffer): Promise<void> {
  const plan = await d.journal.request('prepareWrite', { ino, offset, length: data.length });
  const slot = d.readSlab.tryAlloc();
  try {
    d.readSlab.bytes(slot).set(data);
    const crcs = await d.scheduler.request('write', { plan }, { data: d.readSlab.ref(slot, 0, data.length) });
    await invalidateRuns(d.scheduler, plan.runs);
    await d.journal.request('commitWrite', { plan, crcs, mtimeNs: 1n });
  } finally {
    d.readSlab.free(slot);
  }
}

async function truncate(d: Daemon, ino: number, size: number): Promise<void> {
  const plan = await d.journal.request('prepareTruncate', { ino, size });
  const tailCrc = await d.scheduler.request('truncateTail', { plan });
  await invalidateRuns(d.scheduler, plan.tail?.runs);
  await d.journal.request('commitTruncate', { plan, tailCrc });
}

async function durablePoint(d: Daemon): Promise<void> {
  await d.scheduler.request('sync', {});
  await d.journal.request('sync', {});
}

describe('cached read path (real actors, no FUSE)', () => {
  let d: Daemon;
  let reader: CachedReader;
  const a = fileOf(64, 1); // 256 KiB
  const b = fileOf(600, 2); // 2.3 MiB, for prefetch

  beforeAll(async () => {
    d = await startDaemon({ files: { a, b }, l1Bytes: 8 * MiB, l2Bytes: 8 * MiB });
    reader = new CachedReader(d);
  });
  afterAll(async () => {
    await d.stop();
    fs.rmSync(d.dir, { recursive: true, force: true });
  });

  test('a miss then a hit serve the same, right bytes; unaligned ranges and EOF', async () => {
    const ino = d.files.get('a')!.ino;
    const s0 = await stats(d);
    expect(await readAll(reader, ino, 1000, 20_000)).toEqual(a.subarray(1000, 21_000));
    const s1 = await stats(d);
    expect(s1.misses - s0.misses).toBe(Math.ceil(21_000 / CLUSTER_SIZE));
    await new Promise((r) => setTimeout(r, 50)); // the insert runs after the reply
    expect(await readAll(reader, ino, 1000, 20_000)).toEqual(a.subarray(1000, 21_000));
    const s2 = await stats(d);
    expect(s2.hits - s1.hits).toBe(Math.ceil(21_000 / CLUSTER_SIZE));
    expect(s2.misses).toBe(s1.misses);
    // Partly cached: only the uncached span goes to the scheduler.
    expect(await readAll(reader, ino, 0, 64 * CLUSTER_SIZE)).toEqual(a);
    expect(await readAll(reader, ino, a.length - 10, 100)).toEqual(a.subarray(a.length - 10));
    expect(await readAll(reader, ino, a.length + 10, 100)).toEqual(Buffer.alloc(0));
  });

  test('overwrite: the new runs are invalidated and a read after the commit gets the new bytes', async () => {
    const ino = d.files.get('a')!.ino;
    await readAll(reader, ino, 0, a.length); // everything cached
    await new Promise((r) => setTimeout(r, 50));
    const fresh = Buffer.alloc(3 * CLUSTER_SIZE, 0x42);
    await overwrite(d, ino, 5 * CLUSTER_SIZE + 100, fresh);
    const expected = Buffer.from(a);
    fresh.copy(expected, 5 * CLUSTER_SIZE + 100);
    expect(await readAll(reader, ino, 0, a.length)).toEqual(expected);
    // Freed clusters get reused by later writes (after a durable point): still the new bytes.
    await durablePoint(d);
    for (let i = 0; i < 5; i++) {
      const again = Buffer.alloc(8 * CLUSTER_SIZE, 0x60 + i);
      await overwrite(d, ino, 0, again);
      again.copy(expected, 0);
      await durablePoint(d);
      expect(await readAll(reader, ino, 0, a.length)).toEqual(expected);
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  test('truncate then extend: the tail cluster is rewritten and invalidated, the rest reads as zeros', async () => {
    const ino = d.files.get('a')!.ino;
    const before = await readAll(reader, ino, 0, a.length);
    await new Promise((r) => setTimeout(r, 50));
    await truncate(d, ino, 10 * CLUSTER_SIZE + 7);
    expect(await readAll(reader, ino, 0, a.length)).toEqual(before.subarray(0, 10 * CLUSTER_SIZE + 7));
    await overwrite(d, ino, 20 * CLUSTER_SIZE, Buffer.alloc(CLUSTER_SIZE, 1)); // size grows again
    const got = await readAll(reader, ino, 0, 21 * CLUSTER_SIZE);
    expect(got.subarray(0, 10 * CLUSTER_SIZE + 7)).toEqual(before.subarray(0, 10 * CLUSTER_SIZE + 7));
    expect(got.subarray(10 * CLUSTER_SIZE + 7, 20 * CLUSTER_SIZE).every((x) => x === 0)).toBe(true);
  });

  test('unlink: freed clusters reused by another file read as that file', async () => {
    const name = Buffer.from('victim');
    const caller = { uid: 0, gid: 0, umask: 0o022 };
    const victim = await d.journal.request('create', { parent: 1, name, mode: 0o100644, caller });
    await overwrite(d, victim.ino, 0, fileOf(16, 9));
    await readAll(reader, victim.ino, 0, 16 * CLUSTER_SIZE);
    await new Promise((r) => setTimeout(r, 50));
    await d.journal.request('unlink', { parent: 1, name, caller });
    await durablePoint(d); // the victim's clusters are free now
    const heir = await d.journal.request('create', {
      parent: 1,
      name: Buffer.from('heir'),
      mode: 0o100644,
      caller,
    });
    const content = fileOf(16, 11);
    await overwrite(d, heir.ino, 0, content);
    expect(await readAll(reader, heir.ino, 0, content.length)).toEqual(content);
  });

  test('prefetch: sequential reads trigger it and later reads hit; random reads do not', async () => {
    const ino = d.files.get('b')!.ino;
    const s0 = await stats(d);
    for (let off = 0; off < 64 * CLUSTER_SIZE; off += 32 * CLUSTER_SIZE) {
      expect(await readAll(reader, ino, off, 32 * CLUSTER_SIZE)).toEqual(
        b.subarray(off, off + 32 * CLUSTER_SIZE),
      );
    }
    // The third sequential read starts the first window; let it land.
    expect(await readAll(reader, ino, 64 * CLUSTER_SIZE, 32 * CLUSTER_SIZE)).toEqual(
      b.subarray(64 * CLUSTER_SIZE, 96 * CLUSTER_SIZE),
    );
    await new Promise((r) => setTimeout(r, 300));
    const s1 = await stats(d);
    expect(s1.prefetch.issued - s0.prefetch.issued).toBeGreaterThan(0);
    for (let off = 96 * CLUSTER_SIZE; off < 400 * CLUSTER_SIZE; off += 32 * CLUSTER_SIZE) {
      expect(await readAll(reader, ino, off, 32 * CLUSTER_SIZE)).toEqual(
        b.subarray(off, off + 32 * CLUSTER_SIZE),
      );
      await new Promise((r) => setTimeout(r, 5));
    }
    const s2 = await stats(d);
    expect(s2.prefetch.hits - s1.prefetch.hits).toBeGreaterThan(100);
    expect(reader.prefetch.windows).toBeGreaterThan(1);

    // A fresh reader (no detector state) reading random clusters of a fresh cache: no prefetch.
    await d.cache.request('clear', {});
    const random = new CachedReader(d);
    const r0 = await stats(d);
    let seed = 3;
    for (let i = 0; i < 60; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const off = (seed % 590) * CLUSTER_SIZE;
      expect(await readAll(random, ino, off, CLUSTER_SIZE)).toEqual(b.subarray(off, off + CLUSTER_SIZE));
    }
    await new Promise((r) => setTimeout(r, 200));
    expect((await stats(d)).prefetch.issued).toBe(r0.prefetch.issued);
    expect(random.prefetch.windows + random.prefetch.strided).toBe(0);
  });

  test('prefetch: a strided pattern prefetches the next strides', async () => {
    await d.cache.request('clear', {});
    const ino = d.files.get('b')!.ino;
    const strided = new CachedReader(d);
    const s0 = await stats(d);
    for (let k = 0; k < 4; k++) await readAll(strided, ino, k * 16 * CLUSTER_SIZE, CLUSTER_SIZE);
    await new Promise((r) => setTimeout(r, 300));
    const s1 = await stats(d);
    expect(strided.prefetch.strided).toBeGreaterThan(0);
    expect(s1.prefetch.issued).toBeGreaterThan(s0.prefetch.issued);
    for (let k = 4; k < 10; k++) {
      const off = k * 16 * CLUSTER_SIZE;
      expect(await readAll(strided, ino, off, CLUSTER_SIZE)).toEqual(b.subarray(off, off + CLUSTER_SIZE));
    }
    expect((await stats(d)).prefetch.hits).toBeGreaterThan(s1.prefetch.hits);
  });
});

describe('read-ahead window adapts to the reader’s rate (real actors, no FUSE)', () => {
  let d: Daemon;
  const big = fileOf(3000, 7); // 11.7 MiB

  beforeAll(async () => {
    d = await startDaemon({ files: { big }, l1Bytes: 32 * MiB, l2Bytes: 8 * MiB });
  });
  afterAll(async () => {
    await d.stop();
    fs.rmSync(d.dir, { recursive: true, force: true });
  });

  /** Reads `clusters` sequentially in 32-cluster requests, pausing `pauseMs` after each; returns the windows seen. */
  async function stream(
    reader: CachedReader,
    from: number,
    clusters: number,
    pauseMs: number,
  ): Promise<number[]> {
    const ino = d.files.get('big')!.ino;
    const windows: number[] = [];
    for (let c = from; c < from + clusters; c += 32) {
      const off = c * CLUSTER_SIZE;
      const got = await readAll(reader, ino, off, 32 * CLUSTER_SIZE);
      // Buffer.equals, not toEqual: a deep compare of 128 KiB takes about a second, which would
      // make every reader look slow.
      expect(got.equals(big.subarray(off, off + 32 * CLUSTER_SIZE))).toBe(true);
      if (reader.prefetch.lastWindowClusters !== windows[windows.length - 1])
        windows.push(reader.prefetch.lastWindowClusters);
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    return windows;
  }

  test('a slow reader keeps small windows, a fast one ramps to window_clusters', async () => {
    // 128 KiB every 60 ms ≈ 2 MB/s: 0.1 s of that is ~50 clusters, so the window stays at the floor (64).
    const slow = new CachedReader(d);
    await stream(slow, 0, 640, 60);
    expect(slow.prefetch.windows).toBeGreaterThan(3);
    expect(slow.prefetch.lastRateBps).toBeGreaterThan(0);
    expect(slow.prefetch.lastRateBps).toBeLessThan(4e6);
    expect(slow.prefetch.lastWindowClusters).toBe(64);

    // As fast as the actors serve it (tens of MB/s): the ramp reaches the configured maximum (256).
    await d.cache.request('clear', {});
    const fast = new CachedReader(d);
    const seen = await stream(fast, 1000, 1900, 0);
    expect(seen).toContain(256);
    expect(fast.prefetch.lastRateBps).toBeGreaterThan(slow.prefetch.lastRateBps * 4);
  });
});

describe('warming', () => {
  test('the hottest clusters recorded at a clean stop are loaded at the next start', async () => {
    const files = { w: fileOf(300, 5) };
    let d = await startDaemon({ files, l1Bytes: 1 * MiB, l2Bytes: 0, prefetch: false });
    const ino = d.files.get('w')!.ino;
    const dir = d.dir;
    let reader = new CachedReader(d);
    // Clusters 0..63 are read three times (hot), 100..279 once; 244 clusters fit L1's 256.
    for (let i = 0; i < 3; i++) await readAll(reader, ino, 0, 64 * CLUSTER_SIZE);
    for (let off = 100; off < 280; off += 60)
      await readAll(reader, ino, off * CLUSTER_SIZE, 60 * CLUSTER_SIZE);
    await new Promise((r) => setTimeout(r, 100));
    await d.stop(); // drain records MAP.png.cachewarm
    const recorded = JSON.parse(fs.readFileSync(`${d.map}.cachewarm`, 'utf8')) as { runs: number[][] };
    expect(recorded.runs[0]).toEqual([ino, 0, 64]); // the hot run first
    const total = recorded.runs.reduce((n, r) => n + r[2]!, 0);
    expect(total).toBe(244);

    d = await startDaemon({ files, l1Bytes: 1 * MiB, l2Bytes: 0, prefetch: false, dir });
    try {
      reader = new CachedReader(d);
      expect(await reader.warm()).toBe(244);
      const s0 = await stats(d);
      expect(s0.warm.listed).toBe(244);
      expect(await readAll(reader, ino, 0, 64 * CLUSTER_SIZE)).toEqual(
        files.w.subarray(0, 64 * CLUSTER_SIZE),
      );
      const s1 = await stats(d);
      expect(s1.hits - s0.hits).toBe(64);
      expect(s1.misses).toBe(s0.misses);
    } finally {
      await d.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('neighbour prefetch (real actors, no FUSE)', () => {
  // 96 small files written one after the other (as by cp -r): consecutive map clusters, 1–3 each.
  const names = Array.from({ length: 96 }, (_, i) => `s${String(i).padStart(3, '0')}`);
  const small: Record<string, Buffer> = {};
  names.forEach((n, i) => {
    // Sizes not a multiple of a cluster too: the plan still knows the whole file is small.
    small[n] = fileOf(1 + (i % 3), 50 + i).subarray(0, (1 + (i % 3)) * CLUSTER_SIZE - (i % 2) * 100);
  });
  const big = fileOf(40, 7); // 40 clusters: not a small file
  let d: Daemon;

  beforeAll(async () => {
    d = await startDaemon({ files: { ...small, big }, l1Bytes: 8 * MiB, l2Bytes: 0 });
  });
  afterAll(async () => {
    await d.stop();
    fs.rmSync(d.dir, { recursive: true, force: true });
  });

  /** A reader of its own, with cache.prefetch.neighbour_clusters = n, on an empty cache. */
  async function freshReader(n: number): Promise<CachedReader> {
    await d.cache.request('clear', {});
    const prefetch = { ...d.config.cache.prefetch, neighbour_clusters: n };
    return new CachedReader({ ...d, config: { ...d.config, cache: { ...d.config.cache, prefetch } } });
  }

  /** Waits until neighbour prefetch inserted more than `before` clusters and stopped inserting. */
  async function settle(before: number): Promise<void> {
    let last = -1;
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 30));
      const now = (await stats(d)).prefetch.neighbourIssued;
      if (now === last && now > before) return;
      last = now;
    }
  }

  const clustersOf = (b: Buffer): number => Math.ceil(b.length / CLUSTER_SIZE);

  test('mapSegments lists the files stored in a map range, clipped, with the CRCs their plans name', async () => {
    const first = d.files.get(names[0]!)!.ino;
    const plan0 = await d.journal.request('planRead', { ino: first, offset: 0, length: 1 << 20 });
    const start = plan0.segments[0]!.mapCluster!;
    const segs = await d.journal.request('mapSegments', { first: start + 1, count: 10 });
    // s000 has 1 cluster (start), s001 2, s002 3, s003 1, s004 2, s005 3: [start+1, start+11).
    expect(segs.map((s) => [s.ino, s.fileCluster, s.mapCluster, s.count])).toEqual([
      [d.files.get('s001')!.ino, 0, start + 1, 2],
      [d.files.get('s002')!.ino, 0, start + 3, 3],
      [d.files.get('s003')!.ino, 0, start + 6, 1],
      [d.files.get('s004')!.ino, 0, start + 7, 2],
      [d.files.get('s005')!.ino, 0, start + 9, 2], // clipped: s005's third cluster is outside
    ]);
    for (const s of segs) {
      const plan = await d.journal.request('planRead', {
        ino: s.ino,
        offset: s.fileCluster * CLUSTER_SIZE,
        length: s.count * CLUSTER_SIZE,
      });
      expect(Buffer.from(s.crcs)).toEqual(Buffer.from(plan.segments[0]!.crcs!.subarray(0, s.count * 4)));
    }
    // A range starting inside an extent includes its tail; a limit caps the extents.
    const inside = await d.journal.request('mapSegments', { first: start + 4, count: 3, limit: 1 });
    expect(inside.map((s) => [s.ino, s.fileCluster, s.mapCluster, s.count])).toEqual([
      [d.files.get('s002')!.ino, 1, start + 4, 2],
    ]);
    expect(await d.journal.request('mapSegments', { first: 1 << 30, count: 64 })).toEqual([]);
  });

  test('a cold read of a small file prefetches the files stored after it; later reads hit', async () => {
    const reader = await freshReader(64);
    const s0 = await stats(d);
    expect(await readAll(reader, d.files.get(names[0]!)!.ino, 0, 1 << 20)).toEqual(small[names[0]!]);
    await settle(s0.prefetch.neighbourIssued);
    const s1 = await stats(d);
    expect(reader.prefetch.neighbourWindows).toBe(1);
    expect(s1.prefetch.neighbourIssued - s0.prefetch.neighbourIssued).toBeGreaterThanOrEqual(60);
    let clusters = 0;
    for (const n of names.slice(1)) {
      expect(await readAll(reader, d.files.get(n)!.ino, 0, 1 << 20)).toEqual(small[n]);
      clusters += clustersOf(small[n]!);
    }
    const s2 = await stats(d);
    const hits = s2.prefetch.neighbourHits - s1.prefetch.neighbourHits;
    const misses = s2.misses - s1.misses;
    // ~190 clusters after the first file; windows of 64–128 clusters; each new window costs the
    // misses of the one file that triggered it (and of a file read while it was in flight).
    expect(hits + misses).toBe(clusters);
    expect(hits).toBeGreaterThan(clusters * 0.75);
    expect(misses).toBeLessThan(clusters * 0.25);
    expect(reader.prefetch.neighbourWindows).toBeGreaterThanOrEqual(2);
  });

  test('off with neighbour_clusters = 0: every small file is a miss', async () => {
    const reader = await freshReader(0);
    const s0 = await stats(d);
    let clusters = 0;
    for (const n of names) {
      expect(await readAll(reader, d.files.get(n)!.ino, 0, 1 << 20)).toEqual(small[n]);
      clusters += clustersOf(small[n]!);
      if (n === names[0]) await new Promise((r) => setTimeout(r, 200));
    }
    const s1 = await stats(d);
    expect(reader.prefetch.neighbourWindows).toBe(0);
    expect(s1.prefetch.neighbourIssued).toBe(s0.prefetch.neighbourIssued);
    expect(s1.prefetch.neighbourHits).toBe(s0.prefetch.neighbourHits);
    expect(s1.misses - s0.misses).toBe(clusters);
  });

  test('a big file does not trigger it; a block issued recently is not issued again', async () => {
    const reader = await freshReader(64);
    await readAll(reader, d.files.get('big')!.ino, 0, 8 * CLUSTER_SIZE); // 40 clusters: not small
    expect(reader.prefetch.neighbourWindows).toBe(0);
    const ino = d.files.get(names[0]!)!.ino;
    const before = (await stats(d)).prefetch.neighbourIssued;
    await readAll(reader, ino, 0, 1 << 20);
    await settle(before);
    expect(reader.prefetch.neighbourWindows).toBe(1);
    await d.cache.request('clear', {}); // cold again, but the window was issued a moment ago
    await readAll(reader, ino, 0, 1 << 20);
    expect(reader.prefetch.neighbourWindows).toBe(1);
    expect(reader.prefetch.neighbourSkippedRecent).toBe(1);
  });

  test('a neighbour rewritten after the prefetch reads as its new bytes', async () => {
    const reader = await freshReader(64);
    const before = (await stats(d)).prefetch.neighbourIssued;
    await readAll(reader, d.files.get(names[0]!)!.ino, 0, 1 << 20);
    await settle(before);
    const victim = d.files.get(names[5]!)!.ino;
    const fresh = Buffer.alloc(small[names[5]!]!.length, 0x5a);
    await overwrite(d, victim, 0, fresh);
    expect(await readAll(reader, victim, 0, 1 << 20)).toEqual(fresh);
  });
});
