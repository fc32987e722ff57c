/**
 * The cache through a real mount (the compiled daemon): reads after overwrite, truncate and unlink +
 * reuse return the new bytes, repeated reads hit, and `imapfs stats --json` reports the tiers and
 * cache.hitRatio in 0..1. The reads reopen the file each time: the kernel drops its page cache on
 * open (no keep_cache), so every pass reaches the daemon.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { imapfs, mkfs, mount, requireBuild, tempDir, umount, type Mount } from '../mount/helpers';

const KiB = 1024;

async function readFile(file: string): Promise<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

async function stats(m: Mount): Promise<{ cache: Record<string, unknown> & { hitRatio: number | null } }> {
  const r = await imapfs(['stats', m.mountpoint, '--json']);
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { cache: Record<string, unknown> & { hitRatio: number | null } };
}

function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 8) {
    b.writeUInt32LE(seed, i);
    b.writeUInt32LE(i, i + 4);
  }
  return b;
}

describe('cache through a real mount', () => {
  let m: Mount | null = null;
  let dir = '';

  beforeAll(async () => {
    requireBuild();
    dir = tempDir('cache');
    const map = path.join(dir, 'map.png');
    await mkfs(map, '64M');
    m = await mount(map, ['-o', 'cache.l1_bytes=2M', '-o', 'cache.l2_bytes=2M']);
  });

  afterAll(async () => {
    await umount(m);
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('write, read, overwrite, read: new bytes; truncate; unlink and reuse; hits counted', async () => {
    const f = path.join(m!.mountpoint, 'f');
    const one = pattern(512 * KiB, 1);
    await fsp.writeFile(f, one);
    expect(await readFile(f)).toEqual(one);
    expect(await readFile(f)).toEqual(one); // from the cache
    const s1 = await stats(m!);
    expect(s1.cache.hits as number).toBeGreaterThan(0);

    // Overwrite in the middle, unaligned.
    const patch = pattern(10 * KiB, 2);
    const fh = await fsp.open(f, 'r+');
    await fh.write(patch, 0, patch.length, 100 * KiB + 3);
    await fh.close();
    const two = Buffer.from(one);
    patch.copy(two, 100 * KiB + 3);
    expect(await readFile(f)).toEqual(two);

    // Truncate to an unaligned size, then extend.
    await fsp.truncate(f, 200 * KiB + 5);
    expect(await readFile(f)).toEqual(two.subarray(0, 200 * KiB + 5));
    await fsp.truncate(f, 300 * KiB);
    const three = Buffer.concat([two.subarray(0, 200 * KiB + 5), Buffer.alloc(100 * KiB - 5)]);
    expect(await readFile(f)).toEqual(three);

    // Unlink, sync (the clusters become reusable), fill other files over them, read those.
    await fsp.unlink(f);
    await imapfs(['stats', m!.mountpoint, '--json']);
    const others = [3, 4, 5, 6].map((seed) => pattern(256 * KiB, seed));
    for (const [i, data] of others.entries()) {
      const g = path.join(m!.mountpoint, `g${i}`);
      const h = await fsp.open(g, 'w');
      await h.write(data);
      await h.sync();
      await h.close();
    }
    for (const [i, data] of others.entries()) {
      expect(await readFile(path.join(m!.mountpoint, `g${i}`))).toEqual(data);
      expect(await readFile(path.join(m!.mountpoint, `g${i}`))).toEqual(data);
    }
    const s2 = await stats(m!);
    expect(s2.cache.hitRatio).not.toBeNull();
    expect(s2.cache.hitRatio!).toBeGreaterThan(0);
    expect(s2.cache.hitRatio!).toBeLessThanOrEqual(1);
    expect(s2.cache).toHaveProperty('l1.budgetBytes', 2 * 1024 * KiB);
    expect(s2.cache).toHaveProperty('l2.budgetBytes', 2 * 1024 * KiB);
    expect(s2.cache).toHaveProperty('evictionUs.median');
  });
});

interface PrefetchStats {
  misses: number;
  prefetch: { issued: number; hits: number; neighbourIssued: number; neighbourHits: number };
  windows: { neighbourWindows: number } | null;
}

/**
 * Small files written together (one directory, one after the other, as cp -r does) sit in
 * neighbouring map clusters. After a remount (cold cache, no warm file), a read of the first one
 * prefetches the ones stored after it. Both tests read the same map; the warm file a clean unmount
 * leaves is removed before each mount so that every mount starts cold.
 */
describe('neighbour prefetch through a real mount', () => {
  let dir = '';
  let map = '';
  let m: Mount | null = null;
  const FILES = 120;
  const sizes = Array.from({ length: FILES }, (_, i) => (i % 3 === 2 ? 2 * 4 * KiB - 300 : 3 * KiB + i));
  const names = sizes.map((_, i) => `f${String(i).padStart(3, '0')}`);
  const data = sizes.map((n, i) => pattern(Math.ceil(n / 8) * 8, 100 + i).subarray(0, n));
  const clusters = sizes.reduce((n, s) => n + Math.ceil(s / (4 * KiB)), 0);
  let missesWithPrefetch = -1;

  const cacheOf = async (mm: Mount): Promise<PrefetchStats> =>
    (await stats(mm)).cache as unknown as PrefetchStats;

  async function mountCold(neighbourClusters: number): Promise<Mount> {
    await fsp.rm(`${map}.cachewarm`, { force: true });
    return mount(map, [
      '-o',
      'cache.l1_bytes=8M',
      '-o',
      `cache.prefetch.neighbour_clusters=${neighbourClusters}`,
    ]);
  }

  beforeAll(async () => {
    requireBuild();
    dir = tempDir('neighbour');
    map = path.join(dir, 'map.png');
    await mkfs(map, '64M');
    m = await mount(map);
    await fsp.mkdir(path.join(m.mountpoint, 'd'));
    for (let i = 0; i < FILES; i++) await fsp.writeFile(path.join(m.mountpoint, 'd', names[i]!), data[i]!);
    await umount(m);
    m = null;
  });

  afterEach(async () => {
    await umount(m);
    m = null;
  });

  afterAll(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('on: a cold read of the first file prefetches the others; their reads hit, misses fall', async () => {
    m = await mountCold(64);
    const s0 = await cacheOf(m);
    expect(s0.prefetch.neighbourIssued).toBe(0);
    expect(await readFile(path.join(m.mountpoint, 'd', names[0]!))).toEqual(data[0]);
    // Wait briefly for the window to land.
    let s1 = await cacheOf(m);
    for (let i = 0; i < 100 && s1.prefetch.neighbourIssued < 60; i++) {
      await new Promise((r) => setTimeout(r, 50));
      s1 = await cacheOf(m);
    }
    expect(s1.windows?.neighbourWindows).toBe(1);
    expect(s1.prefetch.neighbourIssued).toBeGreaterThanOrEqual(60);
    for (let i = 1; i < FILES; i++) {
      expect(await readFile(path.join(m.mountpoint, 'd', names[i]!))).toEqual(data[i]);
    }
    const s2 = await cacheOf(m);
    const rest = clusters - Math.ceil(sizes[0]! / (4 * KiB));
    const hits = s2.prefetch.neighbourHits - s1.prefetch.neighbourHits;
    missesWithPrefetch = s2.misses - s1.misses;
    expect(hits).toBeGreaterThan(rest * 0.75);
    expect(missesWithPrefetch).toBeLessThan(rest * 0.25);
    expect(s2.windows!.neighbourWindows).toBeGreaterThanOrEqual(2);
    // `imapfs stats` (text) shows the neighbour counters too.
    const text = await imapfs(['stats', m.mountpoint]);
    expect(text.stdout).toMatch(/neighbour \d+ clusters, \d+ hits/);
  });

  test('off (neighbour_clusters=0): nothing is prefetched and every cluster comes from the scheduler', async () => {
    m = await mountCold(0);
    expect(await readFile(path.join(m.mountpoint, 'd', names[0]!))).toEqual(data[0]);
    await new Promise((r) => setTimeout(r, 500));
    const s1 = await cacheOf(m);
    for (let i = 1; i < FILES; i++) {
      expect(await readFile(path.join(m.mountpoint, 'd', names[i]!))).toEqual(data[i]);
    }
    const s2 = await cacheOf(m);
    expect(s2.prefetch.neighbourIssued).toBe(0);
    expect(s2.prefetch.neighbourHits).toBe(0);
    expect(s2.windows?.neighbourWindows ?? 0).toBe(0);
    const rest = clusters - Math.ceil(sizes[0]! / (4 * KiB));
    expect(s2.misses - s1.misses).toBe(rest);
    if (missesWithPrefetch >= 0) expect(missesWithPrefetch).toBeLessThan(rest / 4);
  });
});
