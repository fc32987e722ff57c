/**
 * Protocols of the cache, integrity and snapshot actors. They start small (issue 4: a real lifecycle
 * and real message handling); the cache, integrity and snapshot issues grow them without changing
 * how the daemon talks to them.
 */
import type { Snapshot } from '../fs/types';

export interface CacheStats {
  entries: number;
  bytes: number;
  budgetBytes: number;
  hits: number;
  misses: number;
  evictions: number;
}

export interface CacheOps {
  /** Stores the slot's bytes as map cluster `cluster`'s content (count clusters). */
  put: { payload: { cluster: number; count: number }; result: null };
  /** Fills the slot with cluster `cluster`'s bytes if cached: true on a hit. */
  get: { payload: { cluster: number }; result: boolean };
  /** Drops clusters [first, first + count) (they were freed or rewritten). */
  invalidate: { payload: { first: number; count: number }; result: number };
  stats: { payload: Record<string, never>; result: CacheStats };
}

export interface IntegrityOps {
  /** Checks the slot's clusters against CRC-32s; returns the indices that do not match. */
  verify: { payload: { crcs: Uint8Array; count: number }; result: number[] };
  stats: { payload: Record<string, never>; result: { verified: number; mismatches: number } };
}

export interface SnapshotOps {
  list: { payload: Record<string, never>; result: Snapshot[] };
}
