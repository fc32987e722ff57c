/**
 * Batched I/O plan for a run of consecutive clusters.
 *
 * A run of clusters is a run of tiles along the curve. We sort its tiles by (y0, x0), merge tiles
 * that touch horizontally into intervals, and emit one raw byte range per image row per interval, in
 * file order. Neighbouring ranges are coalesced into spans (one syscall each) across small gaps;
 * a write span that holds bytes that are not ours (a gap, or the framing between two data chunks)
 * is read first and written back whole (read-modify-write), so those bytes keep their values. Each
 * tile row (128 bytes) then has a known place in the scratch buffer, and the LUT of its orientation
 * un-permutes the tile into the cluster's byte order (or permutes it, for writes); that copy runs in
 * C (tileCopy in native/span_io.c), given where every tile row lies.
 *
 * Owned by one MapContainer (one thread): the scratch buffers are reused by every call.
 */
import { ORIENTATION_LUT, TILE_SIDE, placeTile } from './hilbert';
import { copyTiles, type SpanBatch, type TileRows } from './span-io';
import { BLOCK_GAP, CLUSTER_SIZE, CHUNK_HEADER, DATA_OFFSET, STORED_HEADER, type MapLayout } from './layout';

/**
 * Module-local copies of imported bindings: transpilers may turn imports into getters, which a
 * hot loop would then call per byte.
 */
const SIDE: number = TILE_SIDE;
/** File offset of raw byte 0: the first data chunk's header and block header precede it. */
const DATA_PAYLOAD_BASE: number = DATA_OFFSET + CHUNK_HEADER + STORED_HEADER;

/** Clusters per plan: 1 MiB of cluster data. */
export const PLAN_CLUSTERS = 256;
const MAX_RANGES = PLAN_CLUSTERS * TILE_SIDE;
/**
 * Span coalescing. A pread/pwrite here costs 3–6 µs; copying a few KiB of page cache costs less,
 * so reads merge across small gaps. Measured on this (shared, noisy) VM, larger gaps lost: pulling
 * 8× more bytes than needed costs memory bandwidth that other threads want too. Writes are
 * read-modify-write across gaps, which also rewrites the unchanged gap bytes and so amplifies
 * writeback to disk; their limit is smaller still.
 */
const READ_GAP_MAX = 8 << 10;
const READ_GAP_BUDGET = 1 << 20;
const WRITE_GAP_MAX = 4 << 10;
const WRITE_GAP_BUDGET = 1 << 20;
/** Worst case without merging: cluster bytes plus one block gap per range. */
const SPAN_BYTES = PLAN_CLUSTERS * CLUSTER_SIZE + MAX_RANGES * BLOCK_GAP + READ_GAP_BUDGET + 64;

export class RunPlan {
  /** Span bytes exactly as they are laid out in the file; spanScratch offsets are relative to it. Reused by every call. */
  readonly scratch: Buffer = Buffer.allocUnsafeSlow(SPAN_BYTES);

  /** Per cluster of the plan: x0, y0, orientation. */
  private readonly placement = new Int32Array(3 * PLAN_CLUSTERS);
  private readonly sortKeys = new Float64Array(PLAN_CLUSTERS);
  private readonly tileInterval = new Int32Array(PLAN_CLUSTERS);
  private readonly intervalY0 = new Int32Array(PLAN_CLUSTERS);
  private readonly intervalX0 = new Int32Array(PLAN_CLUSTERS);
  private readonly intervalX1 = new Int32Array(PLAN_CLUSTERS);
  /** scratch position of file offset f in the span holding range (interval, ty) is f + delta. */
  private readonly rangeDelta = new Float64Array(MAX_RANGES);
  private readonly orientations = new Int32Array(PLAN_CLUSTERS);
  private readonly rowAt = new Int32Array(MAX_RANGES);
  private readonly rowRoom = new Int32Array(MAX_RANGES);
  private readonly tileRows: TileRows = {
    store: this.scratch,
    orientations: this.orientations,
    rowAt: this.rowAt,
    rowRoom: this.rowRoom,
    gap: BLOCK_GAP,
    lut: ORIENTATION_LUT,
  };

  spanCount = 0;
  readonly spanFile = new Float64Array(MAX_RANGES);
  readonly spanLength = new Int32Array(MAX_RANGES);
  readonly spanScratch = new Int32Array(MAX_RANGES);
  readonly spanRawStart = new Float64Array(MAX_RANGES);
  readonly spanRawEnd = new Float64Array(MAX_RANGES);
  /** 1 when a write span holds bytes that are not ours (gaps, block framing): read it before writing. */
  readonly spanPartial = new Uint8Array(MAX_RANGES);
  private readonly partialFile = new Float64Array(MAX_RANGES);
  private readonly partialLength = new Int32Array(MAX_RANGES);
  private readonly partialScratch = new Int32Array(MAX_RANGES);

  private layout: MapLayout;
  private count = 0;

  constructor(layout: MapLayout) {
    this.layout = layout;
  }

  setLayout(layout: MapLayout): void {
    this.layout = layout;
  }

  /** Builds the spans for clusters [first, first+count), count ≤ PLAN_CLUSTERS. */
  plan(first: number, count: number, forWrite: boolean): void {
    const L = this.layout;
    this.count = count;
    const pl = this.placement;
    for (let k = 0; k < count; k++) {
      placeTile(L.order, first + k, pl, 3 * k);
      // y0, x0 < 2^16 and k < 2^8: the key sorts by row band, then column, and carries k.
      this.sortKeys[k] = (pl[3 * k + 1] * 65536 + pl[3 * k]) * 256 + k;
    }
    const keys = this.sortKeys.subarray(0, count).sort();

    // Intervals: tiles in the same band that touch horizontally.
    let intervals = 0;
    for (let j = 0; j < count; j++) {
      const k = keys[j] % 256;
      const x0 = pl[3 * k];
      const y0 = pl[3 * k + 1];
      const last = intervals - 1;
      if (last >= 0 && this.intervalY0[last] === y0 && this.intervalX1[last] === x0) {
        this.intervalX1[last] = x0 + TILE_SIDE;
      } else {
        this.intervalY0[intervals] = y0;
        this.intervalX0[intervals] = x0;
        this.intervalX1[intervals] = x0 + TILE_SIDE;
        intervals++;
      }
      this.tileInterval[k] = intervals - 1;
    }

    // Ranges in file order: band by band, row by row, interval by interval.
    this.spanCount = 0;
    let scratchUsed = 0;
    let gapBudget = forWrite ? WRITE_GAP_BUDGET : READ_GAP_BUDGET;
    const gapMax = forWrite ? WRITE_GAP_MAX : READ_GAP_MAX;
    let bandStart = 0;
    while (bandStart < intervals) {
      const y0 = this.intervalY0[bandStart];
      let bandEnd = bandStart + 1;
      while (bandEnd < intervals && this.intervalY0[bandEnd] === y0) bandEnd++;
      for (let ty = 0; ty < TILE_SIDE; ty++) {
        for (let iv = bandStart; iv < bandEnd; iv++) {
          const rawStart = L.rawOffsetOfPixel(this.intervalX0[iv], y0 + ty);
          const rawEnd = L.rawOffsetOfPixel(this.intervalX1[iv], y0 + ty);
          const fileStart = L.fileOffsetOfRaw(rawStart);
          const fileEnd = L.fileOffsetOfRaw(rawEnd - 1) + 1;
          const s = this.spanCount - 1;
          let merge = false;
          if (s >= 0) {
            const gap = fileStart - (this.spanFile[s] + this.spanLength[s]);
            merge = gap <= gapMax && gap <= gapBudget;
            if (merge) gapBudget -= gap;
          }
          if (merge) {
            scratchUsed += fileEnd - (this.spanFile[s] + this.spanLength[s]);
            this.spanLength[s] = fileEnd - this.spanFile[s];
            this.spanRawEnd[s] = rawEnd;
            this.spanPartial[s] = 1;
          } else {
            const n = this.spanCount++;
            this.spanFile[n] = fileStart;
            this.spanLength[n] = fileEnd - fileStart;
            this.spanScratch[n] = scratchUsed;
            this.spanRawStart[n] = rawStart;
            this.spanRawEnd[n] = rawEnd;
            // A range crossing a block boundary carries framing we must not overwrite blindly.
            this.spanPartial[n] = fileEnd - fileStart === rawEnd - rawStart ? 0 : 1;
            scratchUsed += fileEnd - fileStart;
          }
          const cur = this.spanCount - 1;
          this.rangeDelta[iv * TILE_SIDE + ty] = this.spanScratch[cur] - this.spanFile[cur];
        }
      }
      bandStart = bandEnd;
    }
  }

  /** File bytes the plan's spans touch, first to last (spans are in file order). */
  hull(): { start: number; end: number } {
    const last = this.spanCount - 1;
    if (last < 0) return { start: 0, end: 0 };
    return { start: this.spanFile[0]!, end: this.spanFile[last]! + this.spanLength[last]! };
  }

  /** Every span, as one batch for span I/O. */
  allSpans(): SpanBatch {
    return {
      buffer: this.scratch,
      fileOffsets: this.spanFile,
      lengths: this.spanLength,
      bufferOffsets: this.spanScratch,
      count: this.spanCount,
    };
  }

  /** The spans a write must read first (spanPartial), as one batch. */
  partialSpans(): SpanBatch {
    let n = 0;
    for (let s = 0; s < this.spanCount; s++) {
      if (this.spanPartial[s] !== 1) continue;
      this.partialFile[n] = this.spanFile[s]!;
      this.partialLength[n] = this.spanLength[s]!;
      this.partialScratch[n] = this.spanScratch[s]!;
      n++;
    }
    return {
      buffer: this.scratch,
      fileOffsets: this.partialFile,
      lengths: this.partialLength,
      bufferOffsets: this.partialScratch,
      count: n,
    };
  }

  /** After the spans were read into scratch: un-permutes the plan's clusters into out. */
  gather(out: Buffer, outOffset: number): void {
    this.locateRows();
    copyTiles(this.tileRows, this.count, false, out, outOffset);
  }

  /** Before the spans are written: permutes the clusters into scratch and fills known bridge bytes. */
  scatter(data: Buffer, dataOffset: number): void {
    this.locateRows();
    copyTiles(this.tileRows, this.count, true, data, dataOffset);
  }

  /**
   * Where each 128-byte tile row of each cluster lies in the store. A row segment that straddles two
   * stored blocks is split around the framing between them: its first `room` bytes, then the rest.
   */
  private locateRows(): void {
    const L = this.layout;
    const P = L.blockPayload;
    const rowLength = L.rowLength;
    const deltas = this.rangeDelta;
    const pl = this.placement;
    for (let k = 0; k < this.count; k++) {
      const deltaBase = this.tileInterval[k] * SIDE;
      this.orientations[k] = pl[3 * k + 2];
      // Raw offset of the tile's top-left pixel; each tile row is one raw row further.
      let raw = L.rawOffsetOfPixel(pl[3 * k], pl[3 * k + 1]);
      for (let ty = 0, r = k * SIDE; ty < SIDE; ty++, r++, raw += rowLength) {
        const block = Math.floor(raw / P);
        const within = raw - block * P;
        this.rowAt[r] = DATA_PAYLOAD_BASE + block * L.blockStride + within + deltas[deltaBase + ty];
        this.rowRoom[r] = P - within;
      }
    }
  }
}
