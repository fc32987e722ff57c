/**
 * The cache actor's protocol. The cache keeps clean map clusters (never dirty data: write-behind
 * buffers are the dirty tier) keyed by map cluster number, in two tiers: L1, cluster slots in a
 * SharedArrayBuffer slab, and L2, the same clusters deflated into a fixed arena. Data moves through
 * the request's `data` SlotRef (a read-slab slot of the caller), never inside the payload.
 *
 * Keying by map cluster is safe because data is copy-on-write: a live cluster never changes in place.
 * A cluster only gets new content after it was freed and allocated again, and the writer invalidates
 * its new runs after writing them and before committing them (src/fuse/cached-read.ts). Every hit is
 * also checked against the CRC-32 the reader's plan expects, and inserts carry a token so that an
 * insert racing with an invalidation of the same cluster is refused (docs/cache.md).
 */

/** Map clusters [first, first + count). */
export interface ClusterRange {
  first: number;
  count: number;
}

/** One segment of a read plan as the cache sees it: `count` clusters, or a hole (mapCluster null). */
export interface CacheSegment {
  mapCluster: number | null;
  count: number;
  /** count little-endian u32 CRC-32s (the plan's); null for a hole. */
  crcs: Uint8Array | null;
}

/** Which cache instance and which point of its invalidation history a lookup saw. */
export interface CacheToken {
  instance: number;
  seq: number;
}

/** A run of map clusters in the request's slot. */
export interface CacheRun {
  /** Byte offset of the run's first cluster from the start of the request's SlotRef. */
  at: number;
  mapCluster: number;
  count: number;
  /** count little-endian u32 CRC-32s, verified by the scheduler when it read the run. */
  crcs: Uint8Array;
  /** Where the run is in its file (hints for warming at the next mount). */
  ino: number;
  fileCluster: number;
}

/** A run of file clusters recorded for warming. */
export interface WarmRun {
  ino: number;
  fileCluster: number;
  count: number;
}

/** Who fetched the clusters: a reader, sequential/strided prefetch, neighbour prefetch, warming. */
export type InsertSource = 'read' | 'prefetch' | 'neighbour' | 'warm';

export interface CacheLookupResult {
  /**
   * Clusters [missFrom, missTo) of the request (indices from its first cluster) must be read from the
   * scheduler; equal when every cluster was served. Outside that span the slot holds the bytes.
   */
  missFrom: number;
  missTo: number;
  token: CacheToken;
}

export interface TierStats {
  entries: number;
  /** Bytes in use (L2: whole chunks, so fragmentation counts). */
  bytes: number;
  budgetBytes: number;
  hits: number;
  /** Clusters that left this tier to make room (L1: moved to L2 or dropped). */
  evictions: number;
}

export interface CacheStats {
  /** L1 + L2. */
  entries: number;
  bytes: number;
  budgetBytes: number;
  /** Clusters served from either tier. */
  hits: number;
  /** Data clusters that readers had to fetch from the scheduler. hitRatio = hits / (hits + misses). */
  misses: number;
  /** L1 evictions. */
  evictions: number;
  l1: TierStats;
  l2: TierStats & {
    /** L1 evictions not kept in L2 because they would not compress below 90 %. */
    skippedIncompressible: number;
    /** L1 evictions of clusters a sequential prefetch brought in and read at most once: dropped, not deflated. */
    skippedStreamed: number;
    /** Deflated bytes stored (without chunk rounding). */
    storedBytes: number;
  };
  prefetch: {
    /** Clusters inserted by sequential/strided prefetch. */
    issued: number;
    /** Of those, clusters later served to a reader (each counted once). */
    hits: number;
    /** Clusters inserted by neighbour prefetch (files stored after a small file just read). */
    neighbourIssued: number;
    /** Of those, clusters later served to a reader (each counted once). */
    neighbourHits: number;
  };
  invalidated: number;
  /** Inserts refused because their clusters were invalidated after the lookup (a race, handled). */
  refusedInserts: number;
  /** Time to evict one cluster from L1 (deflate into L2 included), over the last 4096 evictions. */
  evictionUs: { median: number; p99: number; samples: number };
  warm: { recorded: number; listed: number; inserted: number };
}

export interface CacheOps {
  /**
   * Copies the cached clusters of the plan into the slot (cluster i at byte i × 4096, holes zeroed)
   * and says which span is left for the scheduler. Clusters whose cached CRC differs from the plan's
   * are misses (and dropped).
   */
  read: { payload: { segments: CacheSegment[] }; result: CacheLookupResult };
  /** Which of these clusters are cached (one byte per cluster, 1 = cached), and a token. */
  probe: { payload: { ranges: ClusterRange[] }; result: { cached: Uint8Array; token: CacheToken } };
  /**
   * Stores the slot's runs (each at its `at`). Clusters invalidated
   * since `token` are skipped. Returns how many clusters were stored.
   */
  insert: {
    payload: { runs: CacheRun[]; token: CacheToken; source: InsertSource };
    result: number;
  };
  /** Drops these clusters (they are about to be, or were just, rewritten). Returns how many were cached. */
  invalidate: { payload: { ranges: ClusterRange[] }; result: number };
  /** Drops everything. */
  clear: { payload: Record<string, never>; result: number };
  /** The runs recorded at the last clean stop (read at start), hottest first. */
  warmList: { payload: Record<string, never>; result: WarmRun[] };
  /** Writes the warm file now (the drain does it too). Returns the clusters recorded. */
  recordWarm: { payload: Record<string, never>; result: number };
  stats: { payload: Record<string, never>; result: CacheStats };
}
