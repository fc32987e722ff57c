/**
 * Group commit: concurrent fsyncs share one durable point. A caller that arrives while a durable
 * point is being made waits for the next one (its writes may have missed the current one), and
 * every caller that arrives meanwhile joins that same next one. So N concurrent fsyncs cost at most
 * two syncs, and an fsync never returns before a sync that started after it was asked for.
 *
 *   idle ──fsync──▶ syncing(current) ──fsync──▶ syncing(current) + next batch
 *   current done ──▶ next batch starts (after `windowMs`, so stragglers join) ──▶ …
 *
 * The window adapts: it grows (up to maxWindowMs) while batches have company and shrinks to zero
 * when fsyncs come alone, so a lone fsync pays no added latency.
 *
 * Ownership: main thread.
 */
export interface GroupCommitStats {
  requested: number;
  syncs: number;
  /** Mean fsyncs served per durable point. */
  batching: number;
  windowMs: number;
}

export class GroupCommit {
  private running: Promise<void> | null = null;
  private next: { promise: Promise<void>; members: number } | null = null;
  private windowMs = 0;
  private requested = 0;
  private syncs = 0;

  constructor(
    private readonly sync: () => Promise<void>,
    private readonly maxWindowMs: number,
  ) {}

  /** Resolves once a durable point that started after this call has completed. */
  commit(): Promise<void> {
    this.requested++;
    if (!this.running) {
      this.running = this.runBatch(1, 0);
      return this.running;
    }
    if (!this.next) {
      const after = this.running;
      const batch = { members: 0, promise: Promise.resolve() };
      batch.promise = after
        .catch(() => undefined) // the previous batch's failure belongs to its own callers
        .then(() => {
          this.next = null;
          this.running = this.runBatch(batch.members, this.windowMs);
          return this.running;
        });
      this.next = batch;
    }
    this.next.members++;
    return this.next.promise;
  }

  stats(): GroupCommitStats {
    return {
      requested: this.requested,
      syncs: this.syncs,
      batching: this.syncs ? this.requested / this.syncs : 0,
      windowMs: this.windowMs,
    };
  }

  private async runBatch(members: number, waitMs: number): Promise<void> {
    try {
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      this.syncs++;
      await this.sync();
    } finally {
      // More than one caller per sync: company is likely, wait a little longer next time.
      this.windowMs =
        members > 1 ? Math.min(this.maxWindowMs, Math.max(0.5, this.windowMs * 2)) : this.windowMs / 2;
      if (this.windowMs < 0.25) this.windowMs = 0;
      if (!this.next) this.running = null;
    }
  }
}
