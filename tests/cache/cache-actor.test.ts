/**
 * The cache actor in its worker thread, with real slabs: memory stays within budget under random
 * churn (its own accounting and this process's RSS), and the insert/read ops move the right bytes.
 */
import { ClusterSlab } from '../../src/actors/runtime/slab';
import { Supervisor } from '../../src/actors/runtime/supervisor';
import { CLUSTER_SIZE } from '../../src/fs/types';
import type { CacheOps, CacheRun, CacheSegment } from '../../src/protocol/cache';
import { actorModule, crcsOf, randomCluster, rss, textCluster } from './helpers';

const MiB = 1 << 20;
const L1 = 16 * MiB;
const L2 = 4 * MiB; // small enough that the warm-up fills it

describe('cache actor in a worker', () => {
  const slab = ClusterSlab.create({ id: 1, slotCount: 4, slotSize: MiB });
  let supervisor: Supervisor;

  beforeAll(async () => {
    supervisor = new Supervisor({ slabs: [slab], startTimeoutMs: 60_000 });
    supervisor.add<CacheOps>({
      name: 'cache',
      module: actorModule('cache'),
      options: { l1Bytes: L1, l2Bytes: L2 },
    });
    await supervisor.start();
  });

  afterAll(() => supervisor.stopAll());

  test('memory stays within budget under random churn (accounting and RSS)', async () => {
    const cache = supervisor.get<CacheOps>('cache');
    const slot = slab.tryAlloc();
    const view = slab.bytes(slot);
    const perRequest = MiB / CLUSTER_SIZE;
    // Clusters 0..N-1 with fixed contents (1 in 4 incompressible), made from a small pool plus the
    // cluster number, so that this thread allocates almost nothing while it measures RSS.
    const N = 40_000; // 160 MiB of distinct clusters: 5× L1 + L2
    const pool = Array.from({ length: 64 }, (_, i) => (i % 4 === 0 ? randomCluster(i) : textCluster(i)));
    const scratch = Buffer.alloc(CLUSTER_SIZE);
    const contentOf = (c: number): Buffer => {
      scratch.set(pool[c % 64]!);
      scratch.writeUInt32LE(c, 0);
      return scratch;
    };
    let seed = 7;
    const rnd = (n: number): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
    const batch = async (): Promise<void> => {
      // Insert 256 random clusters in one request, then read back 64 random ones.
      const runs: CacheRun[] = [];
      for (let i = 0; i < perRequest; i++) {
        const c = rnd(N);
        const bytes = contentOf(c);
        view.set(bytes, i * CLUSTER_SIZE);
        runs.push({
          at: i * CLUSTER_SIZE,
          mapCluster: c,
          count: 1,
          crcs: crcsOf(bytes),
          ino: 2,
          fileCluster: c,
        });
      }
      const { token } = await cache.request('probe', { ranges: [] });
      await cache.request('insert', { runs, token, source: 'read' }, { data: slab.ref(slot) });
      const segments: CacheSegment[] = [];
      for (let i = 0; i < 64; i++) {
        const c = rnd(N);
        segments.push({ mapCluster: c, count: 1, crcs: crcsOf(contentOf(c)) });
      }
      const r = await cache.request('read', { segments }, { data: slab.ref(slot, 0, 64 * CLUSTER_SIZE) });
      for (let i = 0; i < 64; i++) {
        if (i >= r.missFrom && i < r.missTo) continue;
        const expected = contentOf(segments[i]!.mapCluster!);
        if (!Buffer.from(view.subarray(i * CLUSTER_SIZE, (i + 1) * CLUSTER_SIZE)).equals(expected)) {
          throw new Error(`cluster ${segments[i]!.mapCluster} served wrong bytes`);
        }
      }
    };
    const rssStart = rss();
    // Warm up: fill both tiers once, so most of the arenas' pages are touched.
    for (let i = 0; i < 200; i++) await batch();
    let peakBytes = 0;
    // RSS every 20 batches after warm-up: the floor of a quarter (its smallest sample, what is left
    // after the heaps' collections) is what a leak would raise; single samples swing with GC timing.
    const samples: number[] = [];
    for (let i = 0; i < 400; i++) {
      await batch();
      if (i % 20 === 0) {
        samples.push(rss());
        const s = await cache.request('stats', {});
        peakBytes = Math.max(peakBytes, s.bytes);
        expect(s.l1.bytes).toBeLessThanOrEqual(L1);
        expect(s.l2.bytes).toBeLessThanOrEqual(L2);
      }
    }
    const s = await cache.request('stats', {});
    const rssEnd = rss();
    const quarter = samples.length / 4;
    const growth = Math.min(...samples.slice(-quarter)) - Math.min(...samples.slice(0, quarter));
    slab.free(slot);
    console.log(
      `churn: ${s.l1.entries} L1 + ${s.l2.entries} L2 entries, ${(s.bytes / MiB).toFixed(1)} MiB of ${(s.budgetBytes / MiB).toFixed(0)} MiB, ` +
        `${s.l2.skippedIncompressible} incompressible, eviction median ${s.evictionUs.median} µs p99 ${s.evictionUs.p99} µs, ` +
        `RSS +${((rssEnd - rssStart) / MiB).toFixed(1)} MiB in all, floor +${(growth / MiB).toFixed(1)} MiB from the first to the last quarter after warm-up`,
    );
    expect(s.l1.entries).toBe(L1 / CLUSTER_SIZE);
    expect(s.l2.bytes).toBeGreaterThan(L2 * 0.9); // full
    expect(peakBytes).toBeLessThanOrEqual(L1 + L2);
    // 600 batches moved 150 MiB of clusters through the cache (and this thread made them): the whole
    // process grew by the budget plus heap noise; after warm-up its floor stays put (a leak of even a
    // tenth of the 75 MiB moved between the two quarters would raise it past the bound).
    // (V8 heaps of two threads grow by a few tens of MiB under this allocation rate on their own.)
    expect(rssEnd - rssStart).toBeLessThan(L1 + L2 + 64 * MiB);
    expect(growth).toBeLessThan(16 * MiB);
    expect(s.evictionUs.median).toBeLessThan(1000);
  });
});
