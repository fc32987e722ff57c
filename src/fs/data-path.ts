/**
 * The data path as separable steps, so the daemon can run them on different actors: the journal
 * owns the store (plan/prepare/commit), the scheduler owns map I/O (executing the plans).
 *
 *   read:      planRead ─▶ [scheduler reads segments, verifies CRCs] ─▶ bytes
 *   write:     prepareWrite ─▶ [scheduler: read head/tail clusters, merge, CRC, write new runs]
 *                 ─▶ commitWrite (one transaction)        or abortWrite on an I/O error
 *   truncate:  prepareTruncate ─▶ [rewrite the partial last cluster, if any] ─▶ commitTruncate
 *
 * Copy-on-write: new data always goes to freshly allocated clusters; the transaction that makes them
 * live also retires the clusters they replace (pending free). Writes to one inode must be ordered by
 * the caller (one at a time between prepare and commit), as a head/tail read-modify-write reads the
 * clusters that were live at prepare time.
 *
 * Invariant: bytes past EOF inside the file's last cluster are zero on the map. Writes keep it (the
 * merge buffer is zero beyond the old size); a shrinking truncate rewrites the partial last cluster.
 * So growing a file (write past EOF, truncate up) is pure metadata and holes read as zeros.
 */
import { ImapError } from '../protocol/errors';
import type { ClusterAllocator } from './allocator';
import type { ExtentMap, Segment } from './extent-map';
import { isDir, isReg } from './modes';
import type { MetadataStore } from './store';
import { CLUSTER_SIZE, EXTENT_UNWRITTEN, FILE_SIZE_MAX, type Inode, type Run, nowNs } from './types';

export interface ReadPlan {
  ino: number;
  /** Byte range actually readable: [offset, offset + length), clamped to the file size. */
  offset: number;
  length: number;
  /** File clusters [fileCluster, fileCluster + clusterCount) cover the range. */
  fileCluster: number;
  clusterCount: number;
  segments: Segment[];
  /** The file's size when the plan was made (planRead sets it; plans derived from one may not). */
  size?: number;
}

/** A cluster whose old content must be read before the write (partial head or tail). */
export interface MergeCluster {
  /** Index among the plan's clusters (0 = head, clusterCount - 1 = tail). */
  index: number;
  mapCluster: number;
  crc: number;
  /** Bytes of the cluster inside the old file size; the rest is zeroed (the EOF invariant). */
  validBytes: number;
}

export interface WritePlan {
  ino: number;
  offset: number;
  length: number;
  fileCluster: number;
  clusterCount: number;
  /** Old clusters to read and merge (at most two: head and tail). */
  merge: MergeCluster[];
  /** Newly reserved clusters for the whole range, in file order (total = clusterCount). */
  runs: Run[];
}

export interface TruncatePlan {
  ino: number;
  size: number;
  /** Rewrite of the partial last cluster with zeros past `size`, or null if none is needed. */
  tail: WritePlan | null;
}

const CRC_BYTES = 4;

export class DataPath {
  constructor(
    private readonly store: MetadataStore,
    private readonly allocator: ClusterAllocator,
    private readonly extents: ExtentMap,
  ) {}

  planRead(ino: number, offset: number, length: number): ReadPlan {
    const inode = this.regular(ino);
    checkRange(offset, length);
    const end = Math.min(offset + length, inode.size);
    if (end <= offset) {
      return { ino, offset, length: 0, fileCluster: 0, clusterCount: 0, segments: [], size: inode.size };
    }
    const c0 = Math.floor(offset / CLUSTER_SIZE);
    const c1 = Math.ceil(end / CLUSTER_SIZE);
    return {
      ino,
      offset,
      length: end - offset,
      fileCluster: c0,
      clusterCount: c1 - c0,
      segments: this.extents.segments(ino, c0, c1),
      size: inode.size,
    };
  }

  /** `near`: where to allocate when the extent before `offset` is not committed yet (a pipelined writer). */
  prepareWrite(ino: number, offset: number, length: number, near?: number): WritePlan {
    const inode = this.regular(ino);
    checkRange(offset, length);
    if (offset + length > FILE_SIZE_MAX) throw new ImapError('IMAP_E_FILE_TOO_BIG', `ino ${ino}`);
    if (length === 0) return { ino, offset, length, fileCluster: 0, clusterCount: 0, merge: [], runs: [] };
    const end = offset + length;
    const c0 = Math.floor(offset / CLUSTER_SIZE);
    const c1 = Math.ceil(end / CLUSTER_SIZE);
    const merge: MergeCluster[] = [];
    if (offset % CLUSTER_SIZE !== 0) this.addMerge(inode, c0, 0, merge);
    if (end % CLUSTER_SIZE !== 0 && (c1 - 1 !== c0 || merge.length === 0)) {
      if (end < inode.size) this.addMerge(inode, c1 - 1, c1 - 1 - c0, merge);
    }
    const runs = this.allocator.allocate(c1 - c0, this.extents.nextFitFor(ino, c0) ?? near);
    return { ino, offset, length, fileCluster: c0, clusterCount: c1 - c0, merge, runs };
  }

  /**
   * Makes a prepared write live: one transaction replaces the file's extents for the plan's clusters,
   * retires the old clusters (pending free) and updates size, mtime and ctime.
   * `crcs` holds one little-endian u32 CRC-32 per cluster of the plan.
   */
  commitWrite(plan: WritePlan, crcs: Buffer, mtimeNs: bigint = nowNs()): void {
    if (plan.clusterCount === 0) return;
    if (crcs.length !== plan.clusterCount * CRC_BYTES) {
      throw new ImapError(
        'IMAP_E_INVALID',
        `commitWrite: ${crcs.length / CRC_BYTES} CRCs for ${plan.clusterCount}`,
      );
    }
    try {
      this.store.transaction(() => {
        const inode = this.regular(plan.ino);
        this.replace(plan, crcs);
        this.store.updateInode(plan.ino, {
          size: Math.max(inode.size, plan.offset + plan.length),
          mtimeNs,
          ctimeNs: mtimeNs,
        });
      });
    } catch (err) {
      // Delivered again after a journal crash that came after the commit but before its reply.
      if (this.isLive(plan)) return;
      throw err;
    }
  }

  /** Returns a prepared write's clusters (the I/O failed or the caller gave up). */
  abortWrite(plan: WritePlan): void {
    this.allocator.abort(plan.runs);
  }

  prepareTruncate(ino: number, size: number): TruncatePlan {
    const inode = this.regular(ino);
    if (!Number.isSafeInteger(size) || size < 0) throw new ImapError('IMAP_E_INVALID', `size ${size}`);
    if (size > FILE_SIZE_MAX) throw new ImapError('IMAP_E_FILE_TOO_BIG', `size ${size}`);
    if (size >= inode.size || size % CLUSTER_SIZE === 0) return { ino, size, tail: null };
    const c = Math.floor(size / CLUSTER_SIZE);
    const merge: MergeCluster[] = [];
    this.addMerge({ ...inode, size }, c, 0, merge);
    if (merge.length === 0) return { ino, size, tail: null };
    const runs = this.allocator.allocate(1, this.extents.nextFitFor(ino, c));
    return {
      ino,
      size,
      tail: { ino, offset: size, length: 0, fileCluster: c, clusterCount: 1, merge, runs },
    };
  }

  /** One transaction: the rewritten tail cluster (if any), clusters past the end retired, new size. */
  commitTruncate(plan: TruncatePlan, tailCrcs: Buffer | null, timeNs: bigint = nowNs()): void {
    try {
      this.commitTruncateOnce(plan, tailCrcs, timeNs);
    } catch (err) {
      // A second delivery (see commitWrite); without a tail the commit is idempotent as it is.
      if (plan.tail && this.isLive(plan.tail) && this.store.getInode(plan.ino)?.size === plan.size) return;
      throw err;
    }
  }

  private commitTruncateOnce(plan: TruncatePlan, tailCrcs: Buffer | null, timeNs: bigint): void {
    this.store.transaction(() => {
      const inode = this.regular(plan.ino);
      if (plan.tail) {
        if (!tailCrcs || tailCrcs.length !== CRC_BYTES) throw new ImapError('IMAP_E_INVALID', 'tail CRC');
        this.replace(plan.tail, tailCrcs);
      }
      this.extents.punch(plan.ino, Math.ceil(plan.size / CLUSTER_SIZE));
      if (inode.size !== plan.size) {
        this.store.updateInode(plan.ino, { size: plan.size, mtimeNs: timeNs, ctimeNs: timeNs });
      }
    });
  }

  /** True when a truncate to `size` needs no data I/O (then commitTruncate can run directly). */
  truncateIsMetadataOnly(inode: Inode, size: number): boolean {
    if (size >= inode.size || size % CLUSTER_SIZE === 0) return true;
    const c = Math.floor(size / CLUSTER_SIZE);
    return this.extents.segments(inode.ino, c, c + 1)[0]?.mapCluster === null;
  }

  /**
   * fallocate mode 0 / KEEP_SIZE: reserves clusters for the holes in [offset, offset+length) as
   * unwritten extents (they read as zeros, so no data I/O is needed).
   */
  fallocate(ino: number, offset: number, length: number, keepSize: boolean): void {
    checkRange(offset, length);
    if (length === 0) throw new ImapError('IMAP_E_INVALID', 'fallocate length 0');
    if (offset + length > FILE_SIZE_MAX) throw new ImapError('IMAP_E_FILE_TOO_BIG', `ino ${ino}`);
    this.store.transaction(() => {
      const inode = this.regular(ino);
      const c0 = Math.floor(offset / CLUSTER_SIZE);
      const c1 = Math.ceil((offset + length) / CLUSTER_SIZE);
      for (const seg of this.extents.segments(ino, c0, c1)) {
        if (seg.mapCluster !== null || seg.crcs !== null) continue;
        if (this.store.liveExtents(ino, seg.fileCluster, seg.fileCluster + seg.count).length > 0) continue;
        const runs = this.allocator.allocate(seg.count, this.extents.nextFitFor(ino, seg.fileCluster));
        this.allocator.commit(runs);
        this.extents.place(ino, seg.fileCluster, runs, Buffer.alloc(seg.count * CRC_BYTES), EXTENT_UNWRITTEN);
      }
      const t = nowNs();
      const size = keepSize ? inode.size : Math.max(inode.size, offset + length);
      this.store.updateInode(ino, { size, ctimeNs: t, ...(size !== inode.size ? { mtimeNs: t } : {}) });
    });
  }

  /**
   * True when the file's clusters of the plan are exactly the plan's runs: its commit is applied.
   * The runs were free when the plan was prepared, so nothing else can have placed them there.
   */
  private isLive(plan: WritePlan): boolean {
    let run = 0;
    let inRun = 0;
    let covered = 0;
    for (const seg of this.extents.segments(
      plan.ino,
      plan.fileCluster,
      plan.fileCluster + plan.clusterCount,
    )) {
      if (seg.mapCluster === null || seg.crcs === null) return false;
      for (let k = 0; k < seg.count; k++) {
        const r = plan.runs[run];
        if (!r || seg.mapCluster + k !== r.start + inRun) return false;
        if (++inRun === r.length) {
          run++;
          inRun = 0;
        }
      }
      covered += seg.count;
    }
    return covered === plan.clusterCount;
  }

  private replace(plan: WritePlan, crcs: Buffer): void {
    this.allocator.commit(plan.runs);
    this.extents.punch(plan.ino, plan.fileCluster, plan.fileCluster + plan.clusterCount);
    this.extents.place(plan.ino, plan.fileCluster, plan.runs, crcs);
  }

  private addMerge(inode: Inode, fileCluster: number, index: number, out: MergeCluster[]): void {
    const validBytes = Math.min(CLUSTER_SIZE, inode.size - fileCluster * CLUSTER_SIZE);
    if (validBytes <= 0) return;
    const seg = this.extents.segments(inode.ino, fileCluster, fileCluster + 1)[0];
    if (!seg || seg.mapCluster === null || !seg.crcs) return;
    out.push({ index, mapCluster: seg.mapCluster, crc: seg.crcs.readUInt32LE(0), validBytes });
  }

  private regular(ino: number): Inode {
    const inode = this.store.getInode(ino);
    if (!inode) throw new ImapError('IMAP_E_NOT_FOUND', `ino ${ino}`);
    if (isDir(inode.mode)) throw new ImapError('IMAP_E_IS_DIR', `ino ${ino}`);
    if (!isReg(inode.mode)) throw new ImapError('IMAP_E_INVALID', `ino ${ino} is not a regular file`);
    return inode;
  }
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new ImapError('IMAP_E_INVALID', `range ${offset}+${length}`);
  }
}
