/**
 * PlanExecutor: carries out the map I/O of data-path plans over a ClusterIO, in whichever thread owns
 * the map (the CLI's own thread offline, the scheduler actor in the daemon). Planning and committing
 * are the store's business (data-path.ts); this is only bytes: read segments and verify their CRCs,
 * merge head/tail clusters, lay new bytes over them, compute CRCs, write the new runs.
 *
 * Each operation is written once, as a generator that yields the cluster I/O it needs; a synchronous
 * driver runs it over a ClusterIO (the CLI) and an asynchronous one over an AsyncClusterIO (the
 * scheduler's parallel executor), so both paths share every byte decision.
 *
 * Buffers are reused between calls (fresh memory is expensive here; DESIGN.md §9): one executor
 * handles one request at a time; run several executors for several requests at once.
 */
import { crc32 } from 'node:zlib';
import { ImapError } from '../protocol/errors';
import type { ReadPlan, TruncatePlan, WritePlan } from './data-path';
import { CLUSTER_SIZE } from './types';

/** The map's cluster I/O; MapContainer satisfies it. Both calls move whole clusters. */
export interface ClusterIO {
  read(first: number, count: number, out: Buffer, outOffset: number): void;
  write(first: number, data: Buffer, dataOffset: number, count: number): void;
}

/** The same, off the calling thread (MapContainer's *Async methods). */
export interface AsyncClusterIO {
  read(first: number, count: number, out: Buffer, outOffset: number): Promise<void>;
  write(first: number, data: Buffer, dataOffset: number, count: number): Promise<void>;
}

/** One cluster transfer an operation needs before it can go on. */
interface ClusterTransfer {
  readonly write: boolean;
  readonly first: number;
  readonly count: number;
  readonly buf: Buffer;
  readonly offset: number;
}

type Steps<R> = Generator<ClusterTransfer, R, void>;

/** Largest plan an executor takes; callers split larger requests (1 MiB = the FUSE max_write). */
export const MAX_IO_BYTES = 1 << 20;
/** One extra cluster on each side for an unaligned request. */
const SCRATCH_BYTES = MAX_IO_BYTES + 2 * CLUSTER_SIZE;

/** Segment CRCs cross threads as Uint8Array; read them little-endian whatever their prototype. */
function crcAt(crcs: Uint8Array, i: number): number {
  return (crcs[i * 4]! | (crcs[i * 4 + 1]! << 8) | (crcs[i * 4 + 2]! << 16) | (crcs[i * 4 + 3]! << 24)) >>> 0;
}

export class PlanExecutor {
  // Not zero-filled: every byte is written before it is read (holes and merge edges are filled
  // explicitly), and untouched pages cost no RSS while requests stay small.
  private readonly scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  private readonly crcs = Buffer.alloc((SCRATCH_BYTES / CLUSTER_SIZE) * 4);

  constructor(private readonly io?: ClusterIO) {}

  /** Copies the plan's bytes to `out` at `outOffset`; every data cluster's CRC is checked first. */
  read(plan: ReadPlan, out: Uint8Array, outOffset: number): number {
    return this.drive(this.readSteps(plan, out, outOffset));
  }

  /**
   * Writes `data` (plan.length bytes) as the plan says; returns one CRC-32 per cluster (LE u32s), a
   * view of a reused buffer: copy or send it before the next call.
   */
  write(plan: WritePlan, data: Uint8Array): Buffer {
    return this.drive(this.writeSteps(plan, data));
  }

  /** The partial last cluster of a shrinking truncate: old bytes up to the new size, zeros after. */
  truncateTail(plan: TruncatePlan): Buffer | null {
    return plan.tail ? this.drive(this.rewriteSteps(plan.tail)) : null;
  }

  readAsync(io: AsyncClusterIO, plan: ReadPlan, out: Uint8Array, outOffset: number): Promise<number> {
    return this.driveAsync(io, this.readSteps(plan, out, outOffset));
  }

  writeAsync(io: AsyncClusterIO, plan: WritePlan, data: Uint8Array): Promise<Buffer> {
    return this.driveAsync(io, this.writeSteps(plan, data));
  }

  truncateTailAsync(io: AsyncClusterIO, plan: TruncatePlan): Promise<Buffer | null> {
    return plan.tail ? this.driveAsync(io, this.rewriteSteps(plan.tail)) : Promise.resolve(null);
  }

  private drive<R>(steps: Steps<R>): R {
    const io = this.io;
    if (!io) throw new ImapError('IMAP_E_INTERNAL', 'synchronous PlanExecutor call without a ClusterIO');
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
      const t = step.value;
      if (t.write) io.write(t.first, t.buf, t.offset, t.count);
      else io.read(t.first, t.count, t.buf, t.offset);
    }
  }

  private async driveAsync<R>(io: AsyncClusterIO, steps: Steps<R>): Promise<R> {
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
      const t = step.value;
      if (t.write) await io.write(t.first, t.buf, t.offset, t.count);
      else await io.read(t.first, t.count, t.buf, t.offset);
    }
  }

  private *readSteps(plan: ReadPlan, out: Uint8Array, outOffset: number): Steps<number> {
    if (plan.length === 0) return 0;
    const buf = this.scratch;
    let at = 0;
    for (const seg of plan.segments) {
      const bytes = seg.count * CLUSTER_SIZE;
      if (seg.mapCluster === null || !seg.crcs) {
        buf.fill(0, at, at + bytes);
      } else {
        yield { write: false, first: seg.mapCluster, count: seg.count, buf, offset: at };
        for (let i = 0; i < seg.count; i += 1) {
          const start = at + i * CLUSTER_SIZE;
          if (crc32(buf.subarray(start, start + CLUSTER_SIZE)) !== crcAt(seg.crcs, i)) {
            throw new ImapError(
              'IMAP_E_CORRUPT_CLUSTER',
              `ino ${plan.ino} file cluster ${seg.fileCluster + i} (map cluster ${seg.mapCluster + i})`,
            );
          }
        }
      }
      at += bytes;
    }
    const skip = plan.offset - plan.fileCluster * CLUSTER_SIZE;
    out.set(buf.subarray(skip, skip + plan.length), outOffset);
    return plan.length;
  }

  private *writeSteps(plan: WritePlan, data: Uint8Array): Steps<Buffer> {
    if (plan.clusterCount === 0) return this.crcs.subarray(0, 0);
    const buf = this.scratch;
    yield* this.mergeSteps(plan, buf);
    buf.set(data.subarray(0, plan.length), plan.offset - plan.fileCluster * CLUSTER_SIZE);
    return yield* this.runSteps(plan, buf);
  }

  private *rewriteSteps(plan: WritePlan): Steps<Buffer> {
    yield* this.mergeSteps(plan, this.scratch);
    return yield* this.runSteps(plan, this.scratch);
  }

  private *runSteps(plan: WritePlan, buf: Buffer): Steps<Buffer> {
    const crcs = this.crcs.subarray(0, plan.clusterCount * 4);
    for (let i = 0; i < plan.clusterCount; i += 1) {
      crcs.writeUInt32LE(crc32(buf.subarray(i * CLUSTER_SIZE, (i + 1) * CLUSTER_SIZE)), i * 4);
    }
    let at = 0;
    for (const run of plan.runs) {
      yield { write: true, first: run.start, count: run.length, buf, offset: at * CLUSTER_SIZE };
      at += run.length;
    }
    return crcs;
  }

  /** Head and tail clusters: old content inside the old size, zeros elsewhere (the EOF invariant). */
  private *mergeSteps(plan: WritePlan, buf: Buffer): Steps<void> {
    const total = plan.clusterCount * CLUSTER_SIZE;
    buf.fill(0, 0, CLUSTER_SIZE);
    if (plan.clusterCount > 1) buf.fill(0, total - CLUSTER_SIZE, total);
    for (const m of plan.merge) {
      const at = m.index * CLUSTER_SIZE;
      yield { write: false, first: m.mapCluster, count: 1, buf, offset: at };
      if (crc32(buf.subarray(at, at + CLUSTER_SIZE)) !== m.crc) {
        throw new ImapError('IMAP_E_CORRUPT_CLUSTER', `ino ${plan.ino} map cluster ${m.mapCluster}`);
      }
      buf.fill(0, at + m.validBytes, at + CLUSTER_SIZE);
    }
  }
}
