/**
 * ClusterAllocator: hands out contiguous runs of map clusters and takes them back.
 *
 * Policy, in order:
 *   1. next fit: continue right after the file's last cluster (`near`), so appends stay contiguous;
 *   2. best fit: the smallest free run that holds the whole request (big holes stay big);
 *   3. if the free space in total is too small: grow the map (the callback doubles the side, so the
 *      cluster count quadruples) and retry; with growth disabled, IMAP_E_NO_SPACE;
 *   4. otherwise split the request over the largest free runs (fragmenting beats copying the map).
 *
 * Lifecycle of a cluster:
 *
 *   free ──allocate──▶ reserved ──commit (in the write's transaction)──▶ owned by an extent
 *     ▲                   │ abort / open after a crash                          │ free()
 *     └───────────────────┘                                                     ▼
 *     └───────────────────────────releasePending() after a durable point── pending
 *
 * Pending clusters are not reusable until the transaction that freed them is durable: otherwise a crash
 * could bring back the old extent while its clusters already hold a later copy-on-write's data.
 * Every state lives in the store, so free space survives remounts and a crash loses no cluster.
 */
import { ImapError } from '../protocol/errors';
import type { MetadataStore } from './store';
import type { Run } from './types';

/** Called when the map is too small: grows it and returns its new geometry, or null if growth is disabled. */
export type GrowMap = (neededClusters: number, currentClusters: number) => Geometry | null;

export interface Geometry {
  side: number;
  clusterCount: number;
}

export interface AllocatorOptions {
  grow?: GrowMap;
}

export class ClusterAllocator {
  private readonly store: MetadataStore;
  private growMap: GrowMap | undefined;

  constructor(store: MetadataStore, options: AllocatorOptions = {}) {
    this.store = store;
    this.growMap = options.grow;
  }

  setGrow(grow: GrowMap | undefined): void {
    this.growMap = grow;
  }

  /**
   * Reserves `count` clusters, preferring a run that starts at `near`. Returns runs in the order the
   * file should use them. The reservation is committed by `commit` or returned by `abort`.
   */
  allocate(count: number, near?: number): Run[] {
    if (!Number.isInteger(count) || count <= 0) throw new ImapError('IMAP_E_INVALID', `allocate ${count}`);
    return this.store.transaction(() => {
      const runs: Run[] = [];
      let remaining = count;
      if (near !== undefined) {
        const next = this.store.freeAt(near);
        if (next) remaining -= this.take(next, remaining, runs);
      }
      while (remaining > 0) {
        const fit = this.store.freeBestFit(remaining);
        if (fit) {
          remaining -= this.take(fit, remaining, runs);
          continue;
        }
        if (this.store.freeTotal() < remaining) {
          this.grow(remaining);
          continue;
        }
        const largest = this.store.freeLargest();
        if (!largest) throw new ImapError('IMAP_E_INTERNAL', 'free space accounting is inconsistent');
        remaining -= this.take(largest, remaining, runs);
      }
      return runs;
    });
  }

  /** Makes reserved runs owned (call inside the transaction that inserts their extents). */
  commit(runs: readonly Run[]): void {
    for (const run of runs) {
      if (!this.store.reserveDelete(run.start)) {
        throw new ImapError('IMAP_E_INVALID', `clusters ${run.start}+${run.length} are not reserved`);
      }
    }
  }

  /** Returns reserved runs to free space (a write that failed before its commit). */
  abort(runs: readonly Run[]): void {
    this.store.transaction(() => {
      for (const run of runs) {
        if (this.store.reserveDelete(run.start)) this.insertFree(run);
      }
    });
  }

  /** Frees clusters of a dying extent: pending until the next durable point. */
  free(run: Run): void {
    if (run.length > 0) this.store.pendingInsert(run);
  }

  /** Frees clusters at once (no live extent ever pointed at them durably). */
  freeNow(run: Run): void {
    this.store.transaction(() => this.insertFree(run));
  }

  /** Call after a durable point: pending runs become allocatable. Returns how many clusters. */
  releasePending(): number {
    return this.store.transaction(() => {
      let n = 0;
      for (const run of this.store.takePending()) {
        this.insertFree(run);
        n += run.length;
      }
      return n;
    });
  }

  /**
   * At open: whatever is in the database is durable, so pending runs are released, and reservations
   * left by a crash between allocate and commit go back to free space.
   */
  recover(): void {
    this.store.transaction(() => {
      for (const run of this.store.takeReserved()) this.insertFree(run);
      this.releasePending();
    });
  }

  /** The map grew outside the allocator (a crash after growth, before the commit): adds the new clusters. */
  addSpace(geometry: Geometry): void {
    const from = this.store.info.clusterCount;
    if (geometry.clusterCount <= from) return;
    this.store.transaction(() => {
      this.insertFree({ start: from, length: geometry.clusterCount - from });
      this.store.setGeometry(geometry.side, geometry.clusterCount);
    });
  }

  get freeClusters(): number {
    return this.store.freeTotal();
  }

  /** Removes n clusters from the front of a free run, records the reservation. */
  private take(free: Run, n: number, out: Run[]): number {
    const used = Math.min(n, free.length);
    this.store.freeDelete(free.start);
    if (used < free.length) this.store.freeInsert({ start: free.start + used, length: free.length - used });
    const last = out[out.length - 1];
    if (last && last.start + last.length === free.start) {
      // Growth appended space right after the run we just took: keep the reservation one run.
      last.length += used;
      this.store.reserveDelete(last.start);
      this.store.reserveInsert(last);
    } else {
      const run = { start: free.start, length: used };
      this.store.reserveInsert(run);
      out.push(run);
    }
    return used;
  }

  private grow(needed: number): void {
    const before = this.store.info.clusterCount;
    const grown = this.growMap?.(needed, before) ?? null;
    if (grown === null) {
      throw new ImapError('IMAP_E_NO_SPACE', `need ${needed} clusters, ${this.store.freeTotal()} free`);
    }
    const after = grown.clusterCount;
    if (after <= before) throw new ImapError('IMAP_E_INTERNAL', `map growth from ${before} to ${after}`);
    this.insertFree({ start: before, length: after - before });
    this.store.setGeometry(grown.side, after);
  }

  /** Inserts a run into free space, merging with touching neighbours; overlap means corruption. */
  private insertFree(run: Run): void {
    let { start, length } = run;
    const end = start + length;
    const pred = this.store.freeBefore(end);
    if (pred && pred.start + pred.length > start) {
      throw new ImapError('IMAP_E_CORRUPT_METADATA', `freeing clusters ${start}+${length}: already free`);
    }
    if (pred && pred.start + pred.length === start) {
      this.store.freeDelete(pred.start);
      start = pred.start;
      length += pred.length;
    }
    const succ = this.store.freeAt(end);
    if (succ) {
      this.store.freeDelete(succ.start);
      length += succ.length;
    }
    this.store.freeInsert({ start, length });
  }
}
