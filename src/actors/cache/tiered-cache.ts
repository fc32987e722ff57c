/**
 * The cache's state, independent of the worker so that tests can drive it in one thread:
 *
 *   L1  cluster slots of a SharedArrayBuffer slab (ClusterSlab, 4 KiB slots), exact LRU, budget l1Bytes
 *   L2  CompressedTier (deflated), exact LRU, budget l2Bytes
 *
 *   insert ─▶ L1 ─(evict LRU)─▶ L2 (if it compresses below 90 %) ─(evict LRU)─▶ gone
 *   read hit in L2 ─▶ inflated into the reader's slot and promoted to L1
 *
 * Correctness rules (docs/cache.md):
 *   - keyed by map cluster: live clusters never change in place (copy-on-write);
 *   - a hit must match the CRC-32 the reader's plan expects, else it is a miss and the entry is dropped;
 *   - invalidate() logs each range with a sequence number; insert() skips clusters invalidated after
 *     the token its caller got from read()/probe(), so a read that raced with a rewrite never caches
 *     the old bytes. Tokens of another instance (a restarted worker) or older than the log are refused.
 *
 * Ownership: the cache thread (or a test's thread). Not thread-safe; the actor serves one request at
 * a time.
 */
import { ClusterSlab } from '../runtime/slab';
import { ImapError } from '../../protocol/errors';
import { CLUSTER_SIZE } from '../../fs/types';
import type {
  CacheLookupResult,
  CacheRun,
  CacheSegment,
  CacheStats,
  CacheToken,
  ClusterRange,
  InsertSource,
  WarmRun,
} from '../../protocol/cache';
import {
  CompressedTier,
  NOT_PREFETCHED,
  PREFETCH_FILE,
  PREFETCH_NEIGHBOUR,
  type EntryMeta,
  type PrefetchKind,
} from './compressed-tier';
import { LruList } from './lru-list';

export interface TieredCacheOptions {
  l1Bytes: number;
  l2Bytes: number;
  /** Keep streamed clusters read at most once in L2 too (cache.l2_streamed); default false. */
  l2Streamed?: boolean;
  /** Slab id of the L1 arena (only matters if the arena is ever shared). */
  slabId?: number;
}

/** Invalidations remembered for racing inserts. */
const LOG_SIZE = 4096;
const EVICTION_SAMPLES = 4096;

function crcAt(crcs: Uint8Array, i: number): number {
  return (crcs[i * 4]! | (crcs[i * 4 + 1]! << 8) | (crcs[i * 4 + 2]! << 16) | (crcs[i * 4 + 3]! << 24)) >>> 0;
}

function kindOf(source: InsertSource): PrefetchKind {
  if (source === 'prefetch') return PREFETCH_FILE;
  return source === 'neighbour' ? PREFETCH_NEIGHBOUR : NOT_PREFETCHED;
}

const MISS = 0;
const HIT_L1 = 1;
const HIT_L2 = 2;
const HOLE = 3;

export class TieredCache {
  readonly slab: ClusterSlab;
  readonly l2: CompressedTier;
  readonly instance = (Math.random() * 0x7fffffff) | 0;
  private readonly capacity: number;
  private readonly l2Streamed: boolean;
  private readonly lru: LruList;
  private readonly index = new Map<number, number>();
  // per L1 slot
  private readonly cluster: Float64Array;
  private readonly crc: Uint32Array;
  private readonly ino: Float64Array;
  private readonly fileCluster: Float64Array;
  private readonly hitCount: Uint32Array;
  private readonly prefetched: Uint8Array;
  /** 1 if a sequential prefetch brought the cluster in (kept across hits, cleared by an L2 round trip). */
  private readonly streamed: Uint8Array;
  // invalidation log: seq → range, a ring
  private seq = 0;
  private readonly logSeq = new Float64Array(LOG_SIZE);
  private readonly logFirst = new Float64Array(LOG_SIZE);
  private readonly logCount = new Float64Array(LOG_SIZE);
  private readonly evictionUs = new Float64Array(EVICTION_SAMPLES);
  private evictionSamples = 0;
  private status = new Uint8Array(256);

  private readonly c = {
    hitsL1: 0,
    hitsL2: 0,
    misses: 0,
    evictionsL1: 0,
    prefetchIssued: 0,
    prefetchHits: 0,
    neighbourIssued: 0,
    neighbourHits: 0,
    invalidated: 0,
    refusedInserts: 0,
    warmRecorded: 0,
    warmListed: 0,
    warmInserted: 0,
    skippedStreamed: 0,
  };

  constructor(options: TieredCacheOptions) {
    this.capacity = Math.max(1, Math.floor(options.l1Bytes / CLUSTER_SIZE));
    this.slab = ClusterSlab.create({
      id: options.slabId ?? 100,
      slotCount: this.capacity,
      slotSize: CLUSTER_SIZE,
    });
    this.l2 = new CompressedTier(options.l2Bytes);
    this.l2Streamed = options.l2Streamed ?? false;
    const n = this.capacity;
    this.lru = new LruList(n);
    this.cluster = new Float64Array(n);
    this.crc = new Uint32Array(n);
    this.ino = new Float64Array(n);
    this.fileCluster = new Float64Array(n);
    this.hitCount = new Uint32Array(n);
    this.prefetched = new Uint8Array(n);
    this.streamed = new Uint8Array(n);
  }

  get token(): CacheToken {
    return { instance: this.instance, seq: this.seq };
  }

  /** See CacheOps.read. `out` is the reader's slot: cluster i goes to byte i × 4096. */
  read(segments: readonly CacheSegment[], out: Uint8Array): CacheLookupResult {
    let total = 0;
    for (const s of segments) total += s.count;
    if (this.status.length < total) this.status = new Uint8Array(total * 2);
    const status = this.status;
    // Pass 1: classify without side effects, so the miss span is known before anything moves.
    let missFrom = -1;
    let missTo = -1;
    let i = 0;
    for (const s of segments) {
      for (let k = 0; k < s.count; k++, i++) {
        if (s.mapCluster === null || !s.crcs) {
          status[i] = HOLE;
          continue;
        }
        const mc = s.mapCluster + k;
        const want = crcAt(s.crcs, k);
        const slot = this.index.get(mc);
        let st = MISS;
        if (slot !== undefined) {
          if (this.crc[slot] === want) st = HIT_L1;
          else this.dropL1(slot); // another content than the plan's: never serve it
        } else {
          const c = this.l2.crcOf(mc);
          if (c === want) st = HIT_L2;
          else if (c !== undefined) this.l2.delete(mc);
        }
        status[i] = st;
        if (st === MISS) {
          if (missFrom < 0) missFrom = i;
          missTo = i + 1;
        }
      }
    }
    if (missFrom < 0) missFrom = missTo = total;
    // Pass 2: serve everything outside [missFrom, missTo); count the data clusters inside as misses.
    // L1 hits are copied before any L2 hit is promoted, and every L2 hit is inflated before any is
    // stored in L1, so no eviction caused by this request can take a cluster it still has to serve.
    const promote: Array<{ mc: number; at: number; meta: EntryMeta }> = [];
    i = 0;
    for (const s of segments) {
      for (let k = 0; k < s.count; k++, i++) {
        const st = status[i]!;
        if (i >= missFrom && i < missTo) {
          if (st !== HOLE) this.c.misses++;
          continue;
        }
        const at = i * CLUSTER_SIZE;
        if (st === HOLE) {
          out.fill(0, at, at + CLUSTER_SIZE);
        } else if (st === HIT_L1) {
          const slot = this.index.get(s.mapCluster! + k)!;
          out.set(this.slab.bytes(slot), at);
          this.lru.touch(slot);
          this.noteHit(slot);
          this.c.hitsL1++;
        } else {
          promote.push({ mc: s.mapCluster! + k, at, meta: undefined as unknown as EntryMeta });
        }
      }
    }
    for (const p of promote) {
      p.meta = this.l2.take(p.mc, out.subarray(p.at, p.at + CLUSTER_SIZE))!;
      this.c.hitsL2++;
      this.countPrefetchHit(p.meta.prefetched);
    }
    for (const p of promote) {
      this.store(p.mc, out.subarray(p.at, p.at + CLUSTER_SIZE), {
        ...p.meta,
        hits: p.meta.hits + 1,
        prefetched: NOT_PREFETCHED,
      });
    }
    return { missFrom, missTo, token: this.token };
  }

  /** One byte per cluster of the ranges: 1 if cached in either tier. */
  probe(ranges: readonly ClusterRange[]): { cached: Uint8Array; token: CacheToken } {
    let total = 0;
    for (const r of ranges) total += r.count;
    const cached = new Uint8Array(total);
    let i = 0;
    for (const r of ranges) {
      for (let k = 0; k < r.count; k++, i++) {
        const mc = r.first + k;
        cached[i] = this.index.has(mc) || this.l2.has(mc) ? 1 : 0;
      }
    }
    return { cached, token: this.token };
  }

  /** See CacheOps.insert. `data` is the request's slot; each run starts at its `at`. */
  insert(runs: readonly CacheRun[], token: CacheToken, source: InsertSource, data: Uint8Array): number {
    const since = this.invalidatedSince(token);
    let stored = 0;
    for (const run of runs) {
      if (run.at < 0 || run.at + run.count * CLUSTER_SIZE > data.length) {
        throw new ImapError(
          'IMAP_E_INTERNAL',
          `insert: run at ${run.at}+${run.count} clusters outside the slot`,
        );
      }
      for (let k = 0, at = run.at; k < run.count; k++, at += CLUSTER_SIZE) {
        const mc = run.mapCluster + k;
        if (since === null || since.some((r) => mc >= r.first && mc < r.first + r.count)) {
          this.c.refusedInserts++;
          continue;
        }
        const crc = crcAt(run.crcs, k);
        const slot = this.index.get(mc);
        if (slot !== undefined && this.crc[slot] === crc) {
          this.lru.touch(slot);
          continue;
        }
        const meta: EntryMeta = {
          crc,
          ino: run.ino,
          fileCluster: run.fileCluster + k,
          hits: 0,
          prefetched: kindOf(source),
        };
        if (this.store(mc, data.subarray(at, at + CLUSTER_SIZE), meta) >= 0) {
          stored++;
          if (source === 'prefetch') this.c.prefetchIssued++;
          if (source === 'neighbour') this.c.neighbourIssued++;
          if (source === 'warm') this.c.warmInserted++;
        }
      }
    }
    return stored;
  }

  invalidate(ranges: readonly ClusterRange[]): number {
    let dropped = 0;
    for (const r of ranges) {
      if (r.count <= 0) continue;
      const at = ++this.seq % LOG_SIZE;
      this.logSeq[at] = this.seq;
      this.logFirst[at] = r.first;
      this.logCount[at] = r.count;
      if (r.count > this.index.size + this.l2.entries) {
        // A huge range: walk the entries rather than the range.
        for (const [mc, slot] of [...this.index]) {
          if (mc >= r.first && mc < r.first + r.count) {
            this.dropL1(slot);
            dropped++;
          }
        }
        for (const e of [...this.l2.descending()]) {
          if (e.cluster >= r.first && e.cluster < r.first + r.count && this.l2.delete(e.cluster)) dropped++;
        }
        continue;
      }
      for (let mc = r.first; mc < r.first + r.count; mc++) {
        const slot = this.index.get(mc);
        if (slot !== undefined) {
          this.dropL1(slot);
          dropped++;
        } else if (this.l2.delete(mc)) dropped++;
      }
    }
    this.c.invalidated += dropped;
    return dropped;
  }

  /** Drops everything; tokens handed out before are refused afterwards. */
  clear(): number {
    let n = this.index.size;
    for (const slot of [...this.index.values()]) this.dropL1(slot);
    n += this.l2.clear();
    this.seq += LOG_SIZE;
    return n;
  }

  /**
   * The hottest cached clusters as file runs, hottest first: by hits, then most recent, L1 before L2;
   * at most `limit` clusters. Adjacent clusters of one file merge into one run.
   */
  hottest(limit: number): WarmRun[] {
    const picked: Array<{ ino: number; fileCluster: number; hits: number; rank: number }> = [];
    let rank = 0;
    for (const slot of this.lru.descending()) {
      picked.push({
        ino: this.ino[slot]!,
        fileCluster: this.fileCluster[slot]!,
        hits: this.hitCount[slot]!,
        rank: rank++,
      });
    }
    for (const e of this.l2.descending())
      picked.push({ ino: e.ino, fileCluster: e.fileCluster, hits: e.hits, rank: rank++ });
    picked.sort((a, b) => b.hits - a.hits || a.rank - b.rank);
    const chosen = picked.slice(0, limit).filter((p) => p.ino > 0);
    // Merge per file, keep each run's best position in the hotness order.
    const byFile = new Map<number, Array<{ fileCluster: number; order: number }>>();
    chosen.forEach((p, order) => {
      let list = byFile.get(p.ino);
      if (!list) byFile.set(p.ino, (list = []));
      list.push({ fileCluster: p.fileCluster, order });
    });
    const runs: Array<WarmRun & { order: number }> = [];
    for (const [ino, list] of byFile) {
      list.sort((a, b) => a.fileCluster - b.fileCluster);
      let cur: (WarmRun & { order: number }) | null = null;
      for (const { fileCluster, order } of list) {
        if (cur && fileCluster < cur.fileCluster + cur.count) continue; // an older copy of the same cluster
        if (cur && fileCluster === cur.fileCluster + cur.count) {
          cur.count++;
          cur.order = Math.min(cur.order, order);
        } else {
          cur = { ino, fileCluster, count: 1, order };
          runs.push(cur);
        }
      }
    }
    runs.sort((a, b) => a.order - b.order);
    this.c.warmRecorded = chosen.length;
    return runs.map(({ ino, fileCluster, count }) => ({ ino, fileCluster, count }));
  }

  noteWarmListed(n: number): void {
    this.c.warmListed = n;
  }

  /** L1's clusters from least to most recently used (tests). */
  l1Order(): number[] {
    return [...this.lru.ascending()].map((slot) => this.cluster[slot]!);
  }

  get l1Capacity(): number {
    return this.capacity;
  }

  stats(): CacheStats {
    const c = this.c;
    const l1Bytes = this.index.size * CLUSTER_SIZE;
    const l1Budget = this.capacity * CLUSTER_SIZE;
    const samples = Math.min(this.evictionSamples, EVICTION_SAMPLES);
    const sorted = Array.from(this.evictionUs.subarray(0, samples)).sort((a, b) => a - b);
    const q = (p: number): number =>
      samples ? Math.round(sorted[Math.min(samples - 1, Math.floor(p * samples))]! * 10) / 10 : 0;
    return {
      entries: this.index.size + this.l2.entries,
      bytes: l1Bytes + this.l2.usedBytes,
      budgetBytes: l1Budget + this.l2.budgetBytes,
      hits: c.hitsL1 + c.hitsL2,
      misses: c.misses,
      evictions: c.evictionsL1,
      l1: {
        entries: this.index.size,
        bytes: l1Bytes,
        budgetBytes: l1Budget,
        hits: c.hitsL1,
        evictions: c.evictionsL1,
      },
      l2: {
        entries: this.l2.entries,
        bytes: this.l2.usedBytes,
        budgetBytes: this.l2.budgetBytes,
        hits: c.hitsL2,
        evictions: this.l2.evictions,
        skippedIncompressible: this.l2.skippedIncompressible,
        skippedStreamed: this.c.skippedStreamed,
        storedBytes: this.l2.storedBytes,
      },
      prefetch: {
        issued: c.prefetchIssued,
        hits: c.prefetchHits,
        neighbourIssued: c.neighbourIssued,
        neighbourHits: c.neighbourHits,
      },
      invalidated: c.invalidated,
      refusedInserts: c.refusedInserts,
      evictionUs: { median: q(0.5), p99: q(0.99), samples },
      warm: { recorded: c.warmRecorded, listed: c.warmListed, inserted: c.warmInserted },
    };
  }

  // ---- internals -------------------------------------------------------------------------------------

  private noteHit(slot: number): void {
    this.hitCount[slot]!++;
    this.countPrefetchHit(this.prefetched[slot] as PrefetchKind);
    this.prefetched[slot] = NOT_PREFETCHED;
  }

  /** A prefetched cluster served for the first time. */
  private countPrefetchHit(kind: PrefetchKind): void {
    if (kind === PREFETCH_FILE) this.c.prefetchHits++;
    else if (kind === PREFETCH_NEIGHBOUR) this.c.neighbourHits++;
  }

  /** Ranges invalidated after `token`, or null when that cannot be known (refuse everything). */
  private invalidatedSince(token: CacheToken): ClusterRange[] | null {
    if (token.instance !== this.instance || this.seq - token.seq >= LOG_SIZE || token.seq > this.seq)
      return null;
    const out: ClusterRange[] = [];
    for (let s = this.seq; s > token.seq; s--) {
      const at = s % LOG_SIZE;
      if (this.logSeq[at] !== s) return null; // skipped by clear()
      out.push({ first: this.logFirst[at]!, count: this.logCount[at]! });
    }
    return out;
  }

  /** Puts one cluster into L1 (evicting the LRU one to L2 if full); returns its slot or -1. */
  private store(mc: number, bytes: Uint8Array, meta: EntryMeta): number {
    let slot = this.index.get(mc);
    if (slot === undefined) {
      slot = this.slab.tryAlloc();
      if (slot < 0) slot = this.evictL1();
      this.index.set(mc, slot);
    }
    this.slab.bytes(slot).set(bytes);
    this.cluster[slot] = mc;
    this.crc[slot] = meta.crc;
    this.ino[slot] = meta.ino;
    this.fileCluster[slot] = meta.fileCluster;
    this.hitCount[slot] = meta.hits;
    this.prefetched[slot] = meta.prefetched;
    this.streamed[slot] = meta.prefetched === PREFETCH_FILE ? 1 : 0;
    this.lru.touch(slot);
    return slot;
  }

  /** Moves L1's least recently used cluster to L2 (or drops it) and returns its now free slot. */
  private evictL1(): number {
    const t0 = performance.now();
    const slot = this.lru.lru;
    const mc = this.cluster[slot]!;
    // Scan resistance (ZFS's l2arc_noprefetch): a cluster a sequential stream brought in and read at
    // most once is not worth 50–300 µs of deflate on the cache thread, which bounded streaming reads.
    if (!this.l2Streamed && this.streamed[slot] === 1 && this.hitCount[slot]! <= 1) this.c.skippedStreamed++;
    else
      this.l2.put(mc, this.slab.bytes(slot), {
        crc: this.crc[slot]!,
        ino: this.ino[slot]!,
        fileCluster: this.fileCluster[slot]!,
        hits: this.hitCount[slot]!,
        prefetched: this.prefetched[slot] as PrefetchKind,
      });
    this.index.delete(mc);
    this.lru.remove(slot);
    this.c.evictionsL1++;
    this.evictionUs[this.evictionSamples++ % EVICTION_SAMPLES] = (performance.now() - t0) * 1000;
    return slot;
  }

  private dropL1(slot: number): void {
    this.index.delete(this.cluster[slot]!);
    this.lru.remove(slot);
    this.slab.free(slot);
  }
}
