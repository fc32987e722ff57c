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
