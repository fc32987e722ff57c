/**
 * Protocols of the cache, integrity and snapshot actors. They start small (issue 4: a real lifecycle
 * and real message handling); the cache, integrity and snapshot issues grow them without changing
 * how the daemon talks to them.
 */
import type { Snapshot } from '../fs/types';

/** The cache actor's protocol grew into its own file. */
export type { CacheOps, CacheStats } from './cache';

export interface IntegrityOps {
  /** Checks the slot's clusters against CRC-32s; returns the indices that do not match. */
  verify: { payload: { crcs: Uint8Array; count: number }; result: number[] };
  stats: { payload: Record<string, never>; result: { verified: number; mismatches: number } };
}

export interface SnapshotOps {
  list: { payload: Record<string, never>; result: Snapshot[] };
}
