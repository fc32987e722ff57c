/**
 * FileSystemIO: runs the decomposed data path (data-path.ts) in one thread against a ClusterIO.
 * The offline CLI uses it over a MapContainer; the daemon runs the same steps across actors instead.
 *
 * The bytes are the PlanExecutor's business (the same one the daemon's scheduler uses): a CRC-32 per
 * cluster on write, checked on read (mismatch → IMAP_E_CORRUPT_CLUSTER), reused buffers.
 */
import { crc32 } from 'node:zlib';
import type { Caller } from './access';
import type { FileSystem, SetAttr } from './filesystem';
import { MAX_IO_BYTES, PlanExecutor, type ClusterIO } from './plan-executor';
import { CLUSTER_SIZE, type Inode } from './types';

export { MAX_IO_BYTES, type ClusterIO } from './plan-executor';

export class FileSystemIO {
  private readonly exec: PlanExecutor;
  private readonly one = Buffer.alloc(CLUSTER_SIZE);

  constructor(
    readonly fs: FileSystem,
    private readonly io: ClusterIO,
  ) {
    this.exec = new PlanExecutor(io);
  }

  /** Reads up to `length` bytes at `offset` into `out` (allocated if absent); returns the bytes read. */
  read(ino: number, offset: number, length: number, out?: Buffer): Buffer {
    const plan0 = this.fs.planRead(ino, offset, length);
    const result = out ?? Buffer.allocUnsafe(plan0.length);
    let done = 0;
    while (done < plan0.length) {
      const n = Math.min(MAX_IO_BYTES, plan0.length - done);
      const plan = done === 0 && n === plan0.length ? plan0 : this.fs.planRead(ino, offset + done, n);
      this.exec.read(plan, result, done);
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
        const tail = this.exec.truncateTail(plan);
        crc = tail ? Buffer.from(tail) : null;
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

  private writeOnce(ino: number, offset: number, data: Buffer, mtimeNs?: bigint): void {
    const plan = this.fs.prepareWrite(ino, offset, data.length);
    if (plan.clusterCount === 0) return;
    try {
      const crcs = this.exec.write(plan, data);
      this.fs.commitWrite(plan, crcs, mtimeNs);
    } catch (err) {
      this.fs.abortWrite(plan);
      throw err;
    }
  }
}
