/**
 * L2: clusters evicted from L1, deflated (raw deflate, level 1) into one preallocated arena of
 * 256-byte chunks, with its own byte budget and its own exact LRU order. A cluster whose deflated size
 * would be ≥ 90 % of 4096 is not kept (`put` returns false): holding it would save nothing.
 *
 * Memory is fixed at construction: the arena (budget bytes, untouched pages cost nothing until used),
 * a chunk chain (Int32Array), and per-entry typed arrays; no object per entry besides the index Map's.
 * A compressed cluster takes ceil(len / 256) chunks chained through `chunkNext`, so any free chunks
 * will do (no fragmentation beyond the last chunk's tail, which is counted as used).
 *
 * Codec: node:zlib deflateRawSync level 1. Measured here per 4 KiB cluster: ~50 µs on text, ~45 µs
 * on structured binary, but ~90–290 µs on incompressible data, so an order-0 entropy estimate over
 * every 3rd byte (~3 µs) rejects high-entropy clusters before deflate runs. zstd/lz4 are not in
 * Node 20's zlib. Inflate costs ~20–30 µs.
 *
 * Ownership: the cache thread.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { CLUSTER_SIZE } from '../../fs/types';
import { LruList } from './lru-list';

export const CHUNK_BYTES = 256;
/** Deflated at or above this many bytes: not worth keeping. */
export const INCOMPRESSIBLE_BYTES = Math.floor(CLUSTER_SIZE * 0.9);
/** Order-0 entropy (bits per byte, sampled) above which deflate is not even tried. */
const ENTROPY_SKIP_BITS = 7.2;
/**
 * Odd, so the sample visits every byte position of 16-, 32- and 64-bit words: with 4, generators whose
 * words have a constant top bit (fio's buffers) looked like 7 bits per byte and were deflated in vain.
 */
const SAMPLE_STRIDE = 3;

/** Per-cluster facts that travel with a cluster between the tiers. */
export interface EntryMeta {
  crc: number;
  ino: number;
  fileCluster: number;
  hits: number;
  /** Inserted by prefetch and not yet served: which prefetch (PREFETCH_* below), or NOT_PREFETCHED. */
  prefetched: PrefetchKind;
}

export const NOT_PREFETCHED = 0;
/** Sequential or strided prefetch of one file. */
export const PREFETCH_FILE = 1;
/** Neighbour prefetch (the files stored after a small file just read). */
export const PREFETCH_NEIGHBOUR = 2;
export type PrefetchKind = typeof NOT_PREFETCHED | typeof PREFETCH_FILE | typeof PREFETCH_NEIGHBOUR;

/**
 * A 4 KiB window and a small hash table are all a 4 KiB cluster can use; they shrink zlib's per-call
 * state from ~256 KiB to ~24 KiB, and an output chunk of one cluster avoids 16 KiB of garbage per call
 * (both showed in RSS under churn).
 */
const DEFLATE_OPTIONS = { level: 1, windowBits: 12, memLevel: 4, chunkSize: CLUSTER_SIZE + 512 } as const;

const histogram = new Uint32Array(256);
const LOG2 = Array.from({ length: CLUSTER_SIZE / SAMPLE_STRIDE + 1 }, (_, c) => (c === 0 ? 0 : Math.log2(c)));

/** Order-0 entropy of every SAMPLE_STRIDE-th byte, in bits per byte. */
export function sampledEntropy(bytes: Uint8Array): number {
  histogram.fill(0);
  let n = 0;
  for (let i = 0; i < bytes.length; i += SAMPLE_STRIDE, n++) histogram[bytes[i]!]!++;
  // H = log2 n − Σ c log2 c / n
  let sum = 0;
  for (let b = 0; b < 256; b++) {
    const c = histogram[b]!;
    if (c > 1) sum += c * LOG2[c]!;
  }
  return Math.log2(n) - sum / n;
}

export class CompressedTier {
  readonly chunkCount: number;
  readonly budgetBytes: number;
  private readonly arena: Buffer;
  private readonly chunkNext: Int32Array;
  private readonly freeChunks: Int32Array;
  private freeChunkTop: number;
  private readonly freeEntries: Int32Array;
  private freeEntryTop: number;
  private readonly lru: LruList;
  private readonly index = new Map<number, number>();
  private readonly scratch = Buffer.alloc(CLUSTER_SIZE);
  // per entry
  private readonly cluster: Float64Array;
  private readonly crc: Uint32Array;
  private readonly ino: Float64Array;
  private readonly fileCluster: Float64Array;
  private readonly hits: Uint32Array;
  private readonly prefetched: Uint8Array;
  private readonly length: Uint16Array;
  private readonly firstChunk: Int32Array;

  usedChunks = 0;
  storedBytes = 0;
  evictions = 0;
  skippedIncompressible = 0;

  constructor(budgetBytes: number) {
    this.chunkCount = Math.max(0, Math.floor(budgetBytes / CHUNK_BYTES));
    this.budgetBytes = this.chunkCount * CHUNK_BYTES;
    // allocUnsafeSlow: not from the pool, and pages stay untouched (no RSS) until a chunk is used.
    this.arena = Buffer.allocUnsafeSlow(this.budgetBytes);
    const n = this.chunkCount;
    this.chunkNext = new Int32Array(n);
    this.freeChunks = new Int32Array(n);
    this.freeEntries = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.freeChunks[i] = n - 1 - i; // pop order 0, 1, 2, …
      this.freeEntries[i] = n - 1 - i;
    }
    this.freeChunkTop = n;
    this.freeEntryTop = n;
    this.lru = new LruList(n);
    this.cluster = new Float64Array(n);
    this.crc = new Uint32Array(n);
    this.ino = new Float64Array(n);
    this.fileCluster = new Float64Array(n);
    this.hits = new Uint32Array(n);
    this.prefetched = new Uint8Array(n);
    this.length = new Uint16Array(n);
    this.firstChunk = new Int32Array(n);
  }

  get enabled(): boolean {
    return this.chunkCount * CHUNK_BYTES >= CLUSTER_SIZE;
  }

  get entries(): number {
    return this.index.size;
  }

  get usedBytes(): number {
    return this.usedChunks * CHUNK_BYTES;
  }

  has(cluster: number): boolean {
    return this.index.has(cluster);
  }

  crcOf(cluster: number): number | undefined {
    const e = this.index.get(cluster);
    return e === undefined ? undefined : this.crc[e];
  }

  /**
   * Keeps a deflated copy of `bytes` (one cluster), evicting L2's least recently used clusters for
   * room. False when the cluster does not compress below INCOMPRESSIBLE_BYTES or L2 is off.
   */
  put(cluster: number, bytes: Uint8Array, meta: EntryMeta): boolean {
    if (!this.enabled) return false;
    this.delete(cluster);
    if (sampledEntropy(bytes) > ENTROPY_SKIP_BITS) {
      this.skippedIncompressible++;
      return false;
    }
    const packed = deflateRawSync(bytes, DEFLATE_OPTIONS);
    if (packed.length >= INCOMPRESSIBLE_BYTES) {
      this.skippedIncompressible++;
      return false;
    }
    const need = Math.ceil(packed.length / CHUNK_BYTES);
    while (this.freeChunkTop < need || this.freeEntryTop === 0) {
      const victim = this.lru.lru;
      if (victim < 0) return false;
      this.evictions++;
      this.release(victim);
    }
    const e = this.freeEntries[--this.freeEntryTop]!;
    let prevChunk = -1;
    for (let i = 0; i < need; i++) {
      const chunk = this.freeChunks[--this.freeChunkTop]!;
      const from = i * CHUNK_BYTES;
      packed.copy(this.arena, chunk * CHUNK_BYTES, from, Math.min(packed.length, from + CHUNK_BYTES));
      if (prevChunk < 0) this.firstChunk[e] = chunk;
      else this.chunkNext[prevChunk] = chunk;
      prevChunk = chunk;
    }
    this.chunkNext[prevChunk] = -1;
    this.usedChunks += need;
    this.storedBytes += packed.length;
    this.cluster[e] = cluster;
    this.crc[e] = meta.crc;
    this.ino[e] = meta.ino;
    this.fileCluster[e] = meta.fileCluster;
    this.hits[e] = meta.hits;
    this.prefetched[e] = meta.prefetched;
    this.length[e] = packed.length;
    this.index.set(cluster, e);
    this.lru.touch(e);
    return true;
  }

  /** Inflates `cluster` into `out` (4096 bytes), removes it from L2 and returns its facts. */
  take(cluster: number, out: Uint8Array): EntryMeta | undefined {
    const e = this.index.get(cluster);
    if (e === undefined) return undefined;
    const len = this.length[e]!;
    let at = 0;
    for (let chunk = this.firstChunk[e]!; chunk >= 0; chunk = this.chunkNext[chunk]!) {
      const n = Math.min(CHUNK_BYTES, len - at);
      this.arena.copy(this.scratch, at, chunk * CHUNK_BYTES, chunk * CHUNK_BYTES + n);
      at += n;
    }
    const plain = inflateRawSync(this.scratch.subarray(0, len));
    out.set(plain.subarray(0, CLUSTER_SIZE));
    const meta = this.metaOf(e);
    this.release(e);
    return meta;
  }

  delete(cluster: number): boolean {
    const e = this.index.get(cluster);
    if (e === undefined) return false;
    this.release(e);
    return true;
  }

  clear(): number {
    const n = this.index.size;
    for (const e of [...this.index.values()]) this.release(e);
    return n;
  }

  /** Entries from most to least recently used, with their facts (for warming). */
  *descending(): Generator<{ cluster: number } & EntryMeta> {
    for (const e of this.lru.descending()) yield { cluster: this.cluster[e]!, ...this.metaOf(e) };
  }

  /** Clusters from least to most recently used (tests). */
  order(): number[] {
    return [...this.lru.ascending()].map((e) => this.cluster[e]!);
  }

  private metaOf(e: number): EntryMeta {
    return {
      crc: this.crc[e]!,
      ino: this.ino[e]!,
      fileCluster: this.fileCluster[e]!,
      hits: this.hits[e]!,
      prefetched: this.prefetched[e] as PrefetchKind,
    };
  }

  private release(e: number): void {
    let freed = 0;
    for (let chunk = this.firstChunk[e]!; chunk >= 0; chunk = this.chunkNext[chunk]!) {
      this.freeChunks[this.freeChunkTop++] = chunk;
      freed++;
    }
    this.usedChunks -= freed;
    this.storedBytes -= this.length[e]!;
    this.index.delete(this.cluster[e]!);
    this.lru.remove(e);
    this.freeEntries[this.freeEntryTop++] = e;
  }
}
