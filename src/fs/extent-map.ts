/**
 * ExtentMap: a file's mapping from file clusters to map clusters, over the store's extents table.
 *
 * Invariants: live extents of one inode never overlap; each carries one CRC-32 per cluster; an extent
 * is born in the generation that wrote it. Replacing clusters retires the old ones: freed (pending)
 * when no snapshot can see them, otherwise the old extent is kept dead (death_gen) for the snapshot.
 * All methods must run inside a store transaction (the caller's), except `segments`.
 */
import type { ClusterAllocator } from './allocator';
import type { MetadataStore } from './store';
import { EXTENT_UNWRITTEN, type Extent, type Run } from './types';

/** A piece of a file: `count` file clusters from `fileCluster`, at `mapCluster` or a hole (null). */
export interface Segment {
  fileCluster: number;
  count: number;
  mapCluster: number | null;
  /** count u32 CRC-32s for a data segment; null for a hole or unwritten (fallocated) clusters. */
  crcs: Buffer | null;
}

/** A run of map clusters holding data of one file (neighbour prefetch lists them by map cluster). */
export interface MapSegment {
  ino: number;
  fileCluster: number;
  mapCluster: number;
  count: number;
  /** count little-endian u32 CRC-32s (a copy: it crosses threads without the extent's whole blob). */
  crcs: Uint8Array;
}

const CRC_BYTES = 4;
/**
 * Appends merge into the previous extent only up to this many clusters (16 MiB): each merge rewrites
 * the extent's CRC blob, so unbounded merging would make a long append quadratic in WAL bytes. The
 * next extent still continues contiguously on the map, so placement is unaffected.
 */
export const MAX_MERGED_EXTENT = 4096;

export class ExtentMap {
  constructor(
    private readonly store: MetadataStore,
    private readonly allocator: ClusterAllocator,
  ) {}

  /** Segments covering file clusters [from, to) in order, holes included. */
  segments(ino: number, from: number, to: number): Segment[] {
    const out: Segment[] = [];
    let at = from;
    for (const e of this.store.liveExtents(ino, from, to)) {
      const s = Math.max(at, e.fileCluster);
      if (s > at) out.push({ fileCluster: at, count: s - at, mapCluster: null, crcs: null });
      const end = Math.min(to, e.fileCluster + e.length);
      const skip = s - e.fileCluster;
      const unwritten = (e.flags & EXTENT_UNWRITTEN) !== 0;
      out.push({
        fileCluster: s,
        count: end - s,
        mapCluster: unwritten ? null : e.firstCluster + skip,
        crcs: unwritten ? null : e.crcs.subarray(skip * CRC_BYTES, (skip + end - s) * CRC_BYTES),
      });
      at = end;
    }
    if (at < to) out.push({ fileCluster: at, count: to - at, mapCluster: null, crcs: null });
    return out;
  }

  /**
   * The data in map clusters [first, first + count): live, written extents clipped to the range, in
   * map cluster order, from at most `limit` extents. Unwritten (fallocated) extents hold no data and
   * are left out. Map clusters are numbered along the Hilbert curve, so these are the file pieces
   * stored next to each other.
   */
  mapSegments(first: number, count: number, limit: number): MapSegment[] {
    const out: MapSegment[] = [];
    const to = first + count;
    for (const e of this.store.liveExtentsInMapRange(first, to, limit)) {
      if ((e.flags & EXTENT_UNWRITTEN) !== 0) continue;
      const a = Math.max(first, e.firstCluster);
      const b = Math.min(to, e.firstCluster + e.length);
      if (a >= b) continue;
      const skip = a - e.firstCluster;
      out.push({
        ino: e.ino,
        fileCluster: e.fileCluster + skip,
        mapCluster: a,
        count: b - a,
        crcs: new Uint8Array(e.crcs.subarray(skip * CRC_BYTES, (skip + b - a) * CRC_BYTES)),
      });
    }
    return out;
  }

  /** The map cluster right after the file's cluster `fileCluster - 1`, where an append continues. */
  nextFitFor(ino: number, fileCluster: number): number | undefined {
    const prev = this.store.extentBefore(ino, fileCluster);
    if (!prev || prev.fileCluster + prev.length !== fileCluster) return undefined;
    return prev.firstCluster + prev.length;
  }

  /** Retires file clusters [from, to): the file no longer owns them (a hole remains). */
  punch(ino: number, from: number, to = Number.MAX_SAFE_INTEGER): void {
    const gen = this.store.generation;
    for (const e of this.store.liveExtents(ino, from, to)) {
      const a = e.fileCluster;
      const b = e.fileCluster + e.length;
      const os = Math.max(a, from);
      const oe = Math.min(b, to);
      const left = os > a ? slice(e, a, os) : null;
      const right = b > oe ? slice(e, oe, b) : null;
      if (this.store.snapshotNeeds(e.birthGen)) {
        // A snapshot sees the whole old extent: keep it dead; the surviving pieces are re-born now.
        // Their clusters stay shared with the dead extent, so snapshot deletion frees only clusters
        // that no remaining extent (live or dead) owns.
        this.store.killExtent(e.id, gen);
        for (const piece of [left, right]) if (piece) this.store.insertExtent({ ...piece, birthGen: gen });
        continue;
      }
      this.allocator.free({ start: e.firstCluster + (os - a), length: oe - os });
      if (left) {
        this.store.resizeExtent(e.id, left.fileCluster, left.firstCluster, left.length, left.crcs);
        if (right) this.store.insertExtent(right);
      } else if (right) {
        this.store.resizeExtent(e.id, right.fileCluster, right.firstCluster, right.length, right.crcs);
      } else {
        this.store.deleteExtent(e.id);
      }
    }
  }

  /**
   * Places runs at file cluster `fileCluster` onwards (the range must be punched first). The first run
   * merges into the previous extent when it continues it both in the file and on the map.
   */
  place(ino: number, fileCluster: number, runs: readonly Run[], crcs: Buffer, flags = 0): void {
    const gen = this.store.generation;
    let fc = fileCluster;
    let crcAt = 0;
    for (const run of runs) {
      const runCrcs = crcs.subarray(crcAt * CRC_BYTES, (crcAt + run.length) * CRC_BYTES);
      const prev = this.store.extentBefore(ino, fc);
      if (
        prev &&
        prev.fileCluster + prev.length === fc &&
        prev.firstCluster + prev.length === run.start &&
        prev.birthGen === gen &&
        prev.flags === flags &&
        prev.length + run.length <= MAX_MERGED_EXTENT
      ) {
        const merged = Buffer.concat([prev.crcs, runCrcs]);
        this.store.resizeExtent(
          prev.id,
          prev.fileCluster,
          prev.firstCluster,
          prev.length + run.length,
          merged,
        );
      } else {
        this.store.insertExtent({
          ino,
          fileCluster: fc,
          firstCluster: run.start,
          length: run.length,
          birthGen: gen,
          deathGen: null,
          flags,
          crcs: Buffer.from(runCrcs),
        });
      }
      fc += run.length;
      crcAt += run.length;
    }
  }
}

/** The part of extent e covering file clusters [from, to). */
function slice(e: Extent, from: number, to: number): Omit<Extent, 'id'> {
  const skip = from - e.fileCluster;
  return {
    ino: e.ino,
    fileCluster: from,
    firstCluster: e.firstCluster + skip,
    length: to - from,
    birthGen: e.birthGen,
    deathGen: null,
    flags: e.flags,
    crcs: Buffer.from(e.crcs.subarray(skip * CRC_BYTES, (to - e.fileCluster) * CRC_BYTES)),
  };
}
