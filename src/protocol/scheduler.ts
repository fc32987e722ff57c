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

export interface SchedulerOps {
  /** Fills the request's slot with the plan's bytes (CRCs verified); returns the byte count. */
  read: { payload: { plan: ReadPlan }; result: number };
  /**
   * Executes a write plan: merges old head/tail clusters, lays the slot's bytes over them, writes the
   * new runs; returns one CRC-32 per cluster (little-endian u32s) for the commit.
   */
  write: { payload: { plan: WritePlan }; result: Uint8Array };
  /** Rewrites the partial last cluster of a shrinking truncate; returns its CRC. */
  truncateTail: { payload: { plan: TruncatePlan }; result: Uint8Array | null };
  /** Data written so far is durable (fdatasync of the map). */
  sync: { payload: Record<string, never>; result: null };
  /** Checksums, the metadata chunk and the superblock: the map is a complete PNG afterwards. */
  checkpoint: { payload: { generation: number; metadata: Uint8Array }; result: MapInfo };
  grow: { payload: { side: number }; result: MapInfo };
  info: { payload: Record<string, never>; result: MapInfo };
}
