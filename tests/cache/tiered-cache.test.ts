/**
 * The cache's state machine in one thread: exact LRU order, the byte budgets of both tiers, L2
 * demotion/promotion and the incompressible rule, CRC-checked hits, and invalidation that no racing
 * insert can undo.
 */
import { randomFillSync } from 'node:crypto';
import { sampledEntropy } from '../../src/actors/cache/compressed-tier';
import { TieredCache } from '../../src/actors/cache/tiered-cache';
import { CLUSTER_SIZE } from '../../src/fs/types';
import { crcsOf, randomCluster, run, segment, textCluster } from './helpers';

const K = CLUSTER_SIZE;

function put(cache: TieredCache, mapCluster: number, bytes: Buffer): number {
  return cache.insert([run(0, mapCluster, [bytes])], cache.token, 'read', bytes);
}

function get(cache: TieredCache, mapCluster: number, bytes: Buffer): Buffer | null {
  const out = Buffer.alloc(K);
  const r = cache.read([segment(mapCluster, bytes)], out);
  return r.missFrom === r.missTo ? out : null;
}

describe('TieredCache', () => {
  test('L1 evicts in exact LRU order; a hit refreshes recency', () => {
    const cache = new TieredCache({ l1Bytes: 4 * K, l2Bytes: 0 });
    for (let c = 10; c < 14; c++) put(cache, c, textCluster(c));
    expect(cache.l1Order()).toEqual([10, 11, 12, 13]);
    expect(get(cache, 10, textCluster(10))).toEqual(textCluster(10)); // 10 becomes most recent
    expect(cache.l1Order()).toEqual([11, 12, 13, 10]);
    put(cache, 14, textCluster(14)); // evicts 11, the least recently used
    expect(cache.l1Order()).toEqual([12, 13, 10, 14]);
    put(cache, 15, textCluster(15));
    expect(cache.l1Order()).toEqual([13, 10, 14, 15]);
    expect(get(cache, 11, textCluster(11))).toBeNull();
    expect(get(cache, 12, textCluster(12))).toBeNull();
    const s = cache.stats();
    expect(s.l1.entries).toBe(4);
    expect(s.evictions).toBe(2);
    expect(s.hits).toBe(1);
    expect(s.misses).toBe(2);
  });

  test('L1 evictions drop to L2 (compressed), incompressible ones skip it, L2 hits promote to L1', () => {
    const cache = new TieredCache({ l1Bytes: 2 * K, l2Bytes: 16 * K });
    put(cache, 1, textCluster(1));
    put(cache, 2, randomCluster(2));
    put(cache, 3, textCluster(3)); // evicts 1 → L2
    put(cache, 4, textCluster(4)); // evicts 2 → incompressible, dropped
    let s = cache.stats();
    expect(s.l2.entries).toBe(1);
    expect(s.l2.skippedIncompressible).toBe(1);
    expect(s.l2.storedBytes).toBeLessThan(K / 4);
    expect(get(cache, 2, randomCluster(2))).toBeNull();
    expect(get(cache, 1, textCluster(1))).toEqual(textCluster(1)); // from L2, promoted; 3 goes to L2
    s = cache.stats();
    expect(s.l2.hits).toBe(1);
    expect(cache.l1Order()).toEqual([4, 1]);
    expect(cache.l2.order()).toEqual([3]);
    expect(get(cache, 3, textCluster(3))).toEqual(textCluster(3));
    expect(cache.stats().hits).toBe(2);
  });

  test('a sequential stream read once is dropped from L1, not deflated into L2; a re-read one is kept', () => {
    const cache = new TieredCache({ l1Bytes: 2 * K, l2Bytes: 16 * K });
    const prefetch = (mc: number) =>
      cache.insert([run(0, mc, [textCluster(mc)])], cache.token, 'prefetch', textCluster(mc));
    prefetch(1);
    prefetch(2);
    expect(get(cache, 1, textCluster(1))).toEqual(textCluster(1)); // served once, as a stream does
    expect(get(cache, 2, textCluster(2))).toEqual(textCluster(2));
    expect(get(cache, 2, textCluster(2))).toEqual(textCluster(2)); // 2 is read again: worth keeping
    put(cache, 3, textCluster(3)); // evicts 1: streamed, read once → dropped
    put(cache, 4, textCluster(4)); // evicts 2: streamed but read twice → L2
    prefetch(5); // evicts 3: an ordinary read → L2
    put(cache, 6, textCluster(6)); // evicts 4 → L2
    put(cache, 7, textCluster(7)); // evicts 5: prefetched and never read → dropped
    const s = cache.stats();
    expect(s.l2.skippedStreamed).toBe(2);
    expect(cache.l2.order()).toEqual([2, 3, 4]);
    expect(get(cache, 1, textCluster(1))).toBeNull();
    expect(get(cache, 5, textCluster(5))).toBeNull();

    // cache.l2_streamed: the same stream is kept.
    const keep = new TieredCache({ l1Bytes: 2 * K, l2Bytes: 16 * K, l2Streamed: true });
    for (const mc of [1, 2])
      keep.insert([run(0, mc, [textCluster(mc)])], keep.token, 'prefetch', textCluster(mc));
    expect(get(keep, 1, textCluster(1))).toEqual(textCluster(1));
    put(keep, 3, textCluster(3));
    put(keep, 4, textCluster(4));
    expect(keep.stats().l2.skippedStreamed).toBe(0);
    expect(keep.l2.order()).toEqual([2, 1]); // 1 was read last, so evicted last
  });

  test('the entropy estimate sees random words with a constant top bit as incompressible', () => {
    // fio's buffers: words with one byte position whose top bit is always clear. Sampling every 4th
    // byte saw only that position (for one of the four alignments) and measured 7 bits per byte.
    const bytes = new Uint8Array(K);
    for (let p = 0; p < 4; p++) {
      randomFillSync(bytes);
      for (let i = p; i < bytes.length; i += 4) bytes[i] = bytes[i]! & 0x7f;
      expect(sampledEntropy(bytes)).toBeGreaterThan(7.5);
    }
    expect(sampledEntropy(textCluster(1))).toBeLessThan(6);
    const cache = new TieredCache({ l1Bytes: K, l2Bytes: 16 * K });
    put(cache, 1, Buffer.from(bytes));
    put(cache, 2, textCluster(2)); // evicts 1: rejected by the estimate or by deflate, never kept
    expect(cache.stats().l2.skippedIncompressible).toBe(1);
    expect(cache.stats().l2.entries).toBe(0);
  });

  test('a multi-cluster read serves hits around the miss span and zero-fills holes', () => {
    const cache = new TieredCache({ l1Bytes: 16 * K, l2Bytes: 0 });
    const c = [0, 1, 2, 3].map(textCluster);
    put(cache, 100, c[0]!);
    put(cache, 103, c[3]!);
    const out = Buffer.alloc(6 * K, 0xee);
    const r = cache.read(
      [
        segment(100, c[0]!),
        segment(101, c[1]!, c[2]!),
        segment(103, c[3]!),
        { mapCluster: null, count: 2, crcs: null },
      ],
      out,
    );
    expect([r.missFrom, r.missTo]).toEqual([1, 3]);
    expect(out.subarray(0, K)).toEqual(c[0]);
    expect(out.subarray(3 * K, 4 * K)).toEqual(c[3]);
    expect(out.subarray(4 * K).every((b) => b === 0)).toBe(true);
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 2 });
  });

  test('a cached cluster whose CRC differs from the plan is never served', () => {
    const cache = new TieredCache({ l1Bytes: 4 * K, l2Bytes: 0 });
    put(cache, 7, textCluster(1));
    expect(get(cache, 7, textCluster(2))).toBeNull();
    expect(cache.stats().l1.entries).toBe(0);
  });

  test('invalidate drops both tiers; an insert that raced with the invalidation is refused', () => {
    const cache = new TieredCache({ l1Bytes: 1 * K, l2Bytes: 16 * K });
    put(cache, 1, textCluster(1));
    put(cache, 2, textCluster(2)); // 1 → L2
    const before = cache.token; // a reader looked up 5 (a miss) …
    expect(cache.invalidate([{ first: 1, count: 5 }])).toBe(2);
    expect(cache.stats().entries).toBe(0);
    // … and inserts what it read before a writer rewrote cluster 5: refused.
    expect(cache.insert([run(0, 5, [textCluster(5)])], before, 'read', textCluster(5))).toBe(0);
    // Clusters outside the invalidated range are taken.
    expect(cache.insert([run(0, 9, [textCluster(9)])], before, 'read', textCluster(9))).toBe(1);
    expect(cache.stats().refusedInserts).toBe(1);
    // A token from another instance (a restarted worker) is refused entirely.
    expect(
      cache.insert(
        [run(0, 10, [textCluster(10)])],
        { instance: cache.instance + 1, seq: 0 },
        'read',
        textCluster(10),
      ),
    ).toBe(0);
    // After clear(), every earlier token is refused.
    const t = cache.token;
    cache.clear();
    expect(cache.insert([run(0, 11, [textCluster(11)])], t, 'read', textCluster(11))).toBe(0);
  });

  test('budgets hold under random churn: L1 never above its slots, L2 never above its chunks', () => {
    const l1Bytes = 64 * K;
    const l2Bytes = 96 * K;
    const cache = new TieredCache({ l1Bytes, l2Bytes });
    let seed = 1;
    const rnd = (n: number): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
    for (let i = 0; i < 5000; i++) {
      const c = rnd(2000);
      const bytes = c % 5 === 0 ? randomCluster(c) : textCluster(c);
      if (rnd(3) === 0) get(cache, c, bytes);
      else if (rnd(20) === 0) cache.invalidate([{ first: c, count: rnd(8) + 1 }]);
      else put(cache, c, bytes);
      const s = cache.stats();
      expect(s.l1.bytes).toBeLessThanOrEqual(l1Bytes);
      expect(s.l2.bytes).toBeLessThanOrEqual(l2Bytes);
      expect(s.l2.storedBytes).toBeLessThanOrEqual(s.l2.bytes);
    }
    const s = cache.stats();
    expect(s.l1.entries).toBeGreaterThan(48); // full, minus the last invalidations
    expect(s.l2.entries).toBeGreaterThan(64); // compressed: more clusters than L1 in less than 2× the bytes
    expect(s.evictionUs.samples).toBeGreaterThan(100);
  });

  test('hottest() ranks by hits and merges adjacent file clusters', () => {
    const cache = new TieredCache({ l1Bytes: 8 * K, l2Bytes: 0 });
    const data = [0, 1, 2, 3].map(textCluster);
    cache.insert([run(0, 50, data, 7, 10)], cache.token, 'read', Buffer.concat(data));
    put(cache, 90, textCluster(90)); // ino 2, file cluster 0
    for (let i = 0; i < 3; i++) get(cache, 90, textCluster(90));
    expect(cache.hottest(100)).toEqual([
      { ino: 2, fileCluster: 0, count: 1 },
      { ino: 7, fileCluster: 10, count: 4 },
    ]);
    expect(cache.hottest(1)).toEqual([{ ino: 2, fileCluster: 0, count: 1 }]);
    expect(crcsOf(textCluster(1))).toHaveLength(4);
  });
});
