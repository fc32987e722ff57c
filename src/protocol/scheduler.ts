/**
 * The scheduler actor's protocol. The scheduler owns the map file: every cluster read or write, the
 * container checkpoint and growth go through it. Data moves through ClusterSlab slots (the request's
 * `data` SlotRef), never inside the payload.
 */
import type { ReadPlan, TruncatePlan, WritePlan } from '../fs/data-path';

export interface MapInfo {
  side: number;
  clusterCount: number;
  generation: bigint;
  uuid: string;
  formatVersion: number;
}

/** The scheduler actor's start options (ActorSpec.options). */
export interface SchedulerOptions {
  mapPath: string;
  readOnly: boolean;
  /** Added to every map I/O: a slow device for tests and benchmarks. */
  ioDelayMs: number;
  /** Requests served at once (scheduler.max_inflight); default 1. */
  concurrency?: number;
}

/** The parallel executor's counters. */
export interface SchedulerIoStats {
  /** Requests allowed in the scheduler at once (scheduler.max_inflight). */
  readonly concurrency: number;
  /** Map I/O requests executing now, and the most seen at once. */
  readonly inFlight: number;
  readonly peakInFlight: number;
  /** Requests that waited behind an earlier conflicting one (same clusters, or a barrier). */
  readonly orderedWaits: number;
  /** Requests that were alone and so did their I/O in the scheduler thread, not the pool. */
  readonly servedInline: number;
  /** Plan executors allocated (one per concurrent request, kept for reuse). */
  readonly executors: number;
  /** How read batches reach the kernel (src/map/span-io.ts ioEngine). */
  readonly ioEngine: 'io_uring' | 'pread';
  /** errno that refused an io_uring (ENOSYS, EPERM, …); 0 when none was refused. */
  readonly ioUringRefusedErrno: number;
}

export interface SchedulerOps {
  /** Fills the request's slot with the plan's bytes (CRCs verified); returns the byte count. */
  read: { payload: { plan: ReadPlan }; result: number };
  /**
   * Executes a write plan: merges old head/tail clusters, lays the slot's bytes over them, writes the
   * new runs; returns one CRC-32 per cluster (little-endian u32s) for the commit.
   */
  write: { payload: { plan: WritePlan }; result: Uint8Array };
  /**
   * Read-ahead advice: has the kernel start reading map clusters [first, first + count) into its
   * page cache, and returns without waiting for the device (the spans refused, normally 0). Reads
   * nothing into the daemon's memory; a later `read` of them finds them cached.
   */
  advise: { payload: { first: number; count: number }; result: number };
  /** Rewrites the partial last cluster of a shrinking truncate; returns its CRC. */
  truncateTail: { payload: { plan: TruncatePlan }; result: Uint8Array | null };
  /** Data written so far is durable (fdatasync of the map). */
  sync: { payload: Record<string, never>; result: null };
  /** Checksums, the metadata chunk and the superblock: the map is a complete PNG afterwards. */
  checkpoint: { payload: { generation: number; metadata: Uint8Array }; result: MapInfo };
  grow: { payload: { side: number }; result: MapInfo };
  info: { payload: Record<string, never>; result: MapInfo };
  stats: { payload: Record<string, never>; result: SchedulerIoStats };
}
