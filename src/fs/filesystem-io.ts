/**
 * FileSystemIO: runs the decomposed data path (data-path.ts) in one thread against a ClusterIO.
 * The offline CLI uses it over a MapContainer; the daemon runs the same steps across actors instead.
 *
 * It computes a CRC-32 per cluster when writing and checks it when reading (mismatch →
 * IMAP_E_CORRUPT_CLUSTER). Buffers are reused between calls: a write or read of up to
 * MAX_IO_BYTES never allocates (fresh memory is expensive on these machines; DESIGN.md §9).
 */
import { crc32 } from 'node:zlib';
import { ImapError } from '../protocol/errors';
import type { Caller } from './access';
import type { ReadPlan, WritePlan } from './data-path';
import type { FileSystem, SetAttr } from './filesystem';
import { CLUSTER_SIZE, type Inode } from './types';

/** The map's cluster I/O; MapContainer satisfies it. Both calls move whole clusters. */
export interface ClusterIO {
  read(first: number, count: number, out: Buffer, outOffset: number): void;
  write(first: number, data: Buffer, dataOffset: number, count: number): void;
}

/** Larger requests are split; 1 MiB matches the CLI's streaming chunk. */
export const MAX_IO_BYTES = 1 << 20;
/** One extra cluster on each side for an unaligned request. */
const SCRATCH_BYTES = MAX_IO_BYTES + 2 * CLUSTER_SIZE;

export class FileSystemIO {
  private readonly scratch = Buffer.alloc(SCRATCH_BYTES);
  private readonly crcs = Buffer.alloc((SCRATCH_BYTES / CLUSTER_SIZE) * 4);
  private readonly one = Buffer.alloc(CLUSTER_SIZE);

  constructor(
    readonly fs: FileSystem,
    private readonly io: ClusterIO,
  ) {}

  /** Reads up to `length` bytes at `offset` into `out` (allocated if absent); returns the bytes read. */
  read(ino: number, offset: number, length: number, out?: Buffer): Buffer {
    const plan0 = this.fs.planRead(ino, offset, length);
    const result = out ?? Buffer.allocUnsafe(plan0.length);
    let done = 0;
    while (done < plan0.length) {
      const n = Math.min(MAX_IO_BYTES, plan0.length - done);
      const plan = done === 0 && n === plan0.length ? plan0 : this.fs.planRead(ino, offset + done, n);
      this.execRead(plan, result, done);
      done += plan.length;
      if (plan.length < n) break; // the file shrank meanwhile
    }
    return result.subarray(0, done);
  }

  /** Writes `data` at `offset` (copy-on-write); returns the byte count. */
  write(ino: number, offset: number, data: Buffer, mtimeNs?: bigint): number {
    let done = 0;
    while (done < data.length) {
      const n = Math.min(MAX_IO_BYTES, data.length - done);
      this.writeOnce(ino, offset + done, data.subarray(done, done + n), mtimeNs);
      done += n;
    }
    return done;
  }

  truncate(ino: number, size: number): void {
    const plan = this.fs.prepareTruncate(ino, size);
    let crc: Buffer | null = null;
    if (plan.tail) {
      try {
        this.fillMerge(plan.tail, this.scratch);
        crc = Buffer.alloc(4);
        crc.writeUInt32LE(crc32(this.scratch.subarray(0, CLUSTER_SIZE)), 0);
        const run = plan.tail.runs[0];
        if (!run) throw new ImapError('IMAP_E_INTERNAL', 'truncate plan without a run');
        this.io.write(run.start, this.scratch, 0, 1);
      } catch (err) {
        this.fs.abortWrite(plan.tail);
        throw err;
      }
    }
    this.fs.commitTruncate(plan, crc);
  }

  /** setattr including a size change that rewrites the last cluster. */
  setattr(ino: number, attr: SetAttr, caller: Caller): Inode {
    if (attr.size !== undefined) {
      const inode = this.fs.getattr(ino);
      if (attr.size !== inode.size) {
        this.fs.checkTruncate(ino, caller);
        this.truncate(ino, attr.size);
      }
    }
    return this.fs.setattr(ino, { ...attr, size: undefined }, caller);
  }

  /** Reads every cluster of a file and checks its CRC; returns the corrupt file clusters. */
  verifyFile(ino: number): number[] {
    const inode = this.fs.getattr(ino);
    const bad: number[] = [];
    const clusters = Math.ceil(inode.size / CLUSTER_SIZE);
    for (const seg of this.fs.extents.segments(ino, 0, clusters)) {
      if (seg.mapCluster === null || !seg.crcs) continue;
      for (let i = 0; i < seg.count; i += 1) {
        this.io.read(seg.mapCluster + i, 1, this.one, 0);
        if (crc32(this.one) !== seg.crcs.readUInt32LE(i * 4)) bad.push(seg.fileCluster + i);
      }
    }
    return bad;
  }

  private execRead(plan: ReadPlan, out: Buffer, outOffset: number): void {
    const buf = this.scratch;
    let at = 0;
    for (const seg of plan.segments) {
      const bytes = seg.count * CLUSTER_SIZE;
      if (seg.mapCluster === null || !seg.crcs) {
        buf.fill(0, at, at + bytes);
      } else {
        this.io.read(seg.mapCluster, seg.count, buf, at);
        for (let i = 0; i < seg.count; i += 1) {
          const start = at + i * CLUSTER_SIZE;
          const want = seg.crcs.readUInt32LE(i * 4);
          if (crc32(buf.subarray(start, start + CLUSTER_SIZE)) !== want) {
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
    buf.copy(out, outOffset, skip, skip + plan.length);
  }

  private writeOnce(ino: number, offset: number, data: Buffer, mtimeNs?: bigint): void {
    const plan = this.fs.prepareWrite(ino, offset, data.length);
    if (plan.clusterCount === 0) return;
    try {
      const buf = this.scratch;
      this.fillMerge(plan, buf);
      data.copy(buf, offset - plan.fileCluster * CLUSTER_SIZE);
      const crcs = this.crcs.subarray(0, plan.clusterCount * 4);
      for (let i = 0; i < plan.clusterCount; i += 1) {
        crcs.writeUInt32LE(crc32(buf.subarray(i * CLUSTER_SIZE, (i + 1) * CLUSTER_SIZE)), i * 4);
      }
      let at = 0;
      for (const run of plan.runs) {
        this.io.write(run.start, buf, at * CLUSTER_SIZE, run.length);
        at += run.length;
      }
      this.fs.commitWrite(plan, crcs, mtimeNs);
    } catch (err) {
      this.fs.abortWrite(plan);
      throw err;
    }
  }

  /** Head and tail clusters: old content inside the old size, zeros elsewhere (the EOF invariant). */
  private fillMerge(plan: WritePlan, buf: Buffer): void {
    const total = plan.clusterCount * CLUSTER_SIZE;
    buf.fill(0, 0, CLUSTER_SIZE);
    if (plan.clusterCount > 1) buf.fill(0, total - CLUSTER_SIZE, total);
    for (const m of plan.merge) {
      const at = m.index * CLUSTER_SIZE;
      this.io.read(m.mapCluster, 1, buf, at);
      if (crc32(buf.subarray(at, at + CLUSTER_SIZE)) !== m.crc) {
        throw new ImapError('IMAP_E_CORRUPT_CLUSTER', `ino ${plan.ino} map cluster ${m.mapCluster}`);
      }
      buf.fill(0, at + m.validBytes, at + CLUSTER_SIZE);
    }
  }
}
