/**
 * RangeGate: orders concurrent operations over numbered ranges (map clusters, or file bytes).
 *
 * An operation is admitted with `enter(claim)` in submission order and runs once no operation
 * admitted *before* it, and still running or waiting, conflicts with it:
 *   - two claims conflict when a range one writes overlaps a range the other reads or writes;
 *   - a `barrier: 'all'` claim conflicts with everything (checkpoint, growth);
 *   - a `barrier: 'writes'` claim conflicts with every claim that writes, and with barriers (sync).
 * So a write waits for earlier reads and writes of the same ranges, a read waits for earlier
 * writes of its ranges, and operations on disjoint ranges run at once. Later operations never
 * overtake an earlier conflicting one, which makes the order per range the submission order.
 *
 * Cost: O(admitted operations) per enter and per leave. The gate holds at most the owner's
 * concurrency plus its waiters (tens), so a scan beats an interval tree here.
 *
 * Ownership: one gate per owner (a MapContainer, the scheduler); single-threaded, never shared.
 */

/** Half-open range [start, end). */
export interface Range {
  readonly start: number;
  readonly end: number;
}

export interface Claim {
  readonly reads?: readonly Range[];
  readonly writes?: readonly Range[];
  readonly barrier?: 'all' | 'writes';
}

export interface GateStats {
  /** Operations admitted and not yet left. */
  readonly admitted: number;
  /** Of those, operations still waiting for an earlier conflicting one. */
  readonly waiting: number;
  /** Operations that had to wait at all, since the gate was made. */
  readonly delayed: number;
}

interface Entry {
  readonly claim: Claim;
  running: boolean;
  wake: (() => void) | undefined;
}

function overlaps(a: readonly Range[] | undefined, b: readonly Range[] | undefined): boolean {
  if (!a || !b) return false;
  for (const x of a) {
    for (const y of b) {
      if (x.start < y.end && y.start < x.end) return true;
    }
  }
  return false;
}

function writes(claim: Claim): boolean {
  return (claim.writes?.length ?? 0) > 0 || claim.barrier !== undefined;
}

export function conflicts(earlier: Claim, later: Claim): boolean {
  if (earlier.barrier === 'all' || later.barrier === 'all') return true;
  if (earlier.barrier === 'writes') return writes(later);
  if (later.barrier === 'writes') return writes(earlier);
  return (
    overlaps(earlier.writes, later.writes) ||
    overlaps(earlier.writes, later.reads) ||
    overlaps(earlier.reads, later.writes)
  );
}

/** What `enter` resolves to: call `leave()` exactly once when the operation is done. */
export interface GateTicket {
  leave(): void;
}

export class RangeGate {
  private readonly entries: Entry[] = [];
  private delayed = 0;

  /** Admits the claim now (its place in the order is fixed by this call) and waits for its turn. */
  enter(claim: Claim): Promise<GateTicket> {
    const entry: Entry = { claim, running: false, wake: undefined };
    const blocked = this.blocked(this.entries.length, claim);
    this.entries.push(entry);
    const ticket: GateTicket = { leave: () => this.leave(entry) };
    if (!blocked) {
      entry.running = true;
      return Promise.resolve(ticket);
    }
    this.delayed++;
    return new Promise<GateTicket>((resolve) => {
      entry.wake = () => resolve(ticket);
    });
  }

  stats(): GateStats {
    let waiting = 0;
    for (const e of this.entries) if (!e.running) waiting++;
    return { admitted: this.entries.length, waiting, delayed: this.delayed };
  }

  private blocked(before: number, claim: Claim): boolean {
    for (let i = 0; i < before; i++) {
      if (conflicts(this.entries[i]!.claim, claim)) return true;
    }
    return false;
  }

  private leave(entry: Entry): void {
    const at = this.entries.indexOf(entry);
    if (at < 0) return; // left twice: the second call has nothing to release
    this.entries.splice(at, 1);
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.running || this.blocked(i, e.claim)) continue;
      e.running = true;
      e.wake?.();
    }
  }
}
