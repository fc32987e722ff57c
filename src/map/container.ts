/**
 * MapContainer: one map file, opened by one thread that owns it. Its cluster I/O comes twice: the
 * synchronous calls (the offline CLI, structural work: checkpoint, growth, repair) and the *Async
 * calls, which hand a whole RunPlan's spans to the thread pool in one batch so that the scheduler
 * can keep several requests in flight (span-io.ts). The caller keeps structural work away from
 * asynchronous calls in flight (the scheduler's RangeGate; asserted here).
 *
 * State of the checksums:
 *
 *   clean ──first pixel write──▶ dirty (imSB state=dirty, fdatasync'd before the write)
 *     ▲                            │
 *     └──── checkpoint() ◀─────────┘   (fix CRCs of dirty blocks, update Adler-32, imMD, state=clean)
 *     └──── repairChecksums() ◀──── dirty found at open (a crash): rescan the blocks of the regions
 *                                   the intent log marked, or everything if the log is unusable
 *
 * The intent log (intents.ts) is written alongside: a region's mark is durable before its first
 * pixel write of an epoch, and the per-block sums table is rewritten at each checkpoint.
 *
 * Ownership: every field is owned by the thread that opened the container; nothing is shared.
 */
import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { crc32 } from 'node:zlib';
import { ImapError, fromSystemError, isImapError } from '../protocol/errors';
import { StreamAdler, blockCoefficient, blockSums } from './adler32';
import {
  type ContainerReport,
  type ProgressFn,
  type RepairReport,
  IEND_CHUNK,
  scanContainer,
} from './integrity';
import {
  BLOCK_GAP,
  CHUNK_HEADER,
  CHUNK_OVERHEAD,
  CLUSTER_SIZE,
  FORMAT_VERSION,
  MAX_SIDE,
  MIN_SIDE,
  MapLayout,
  STORED_HEADER,
  SUPERBLOCK_CHUNK_OFFSET,
  SUPERBLOCK_LENGTH,
  isValidSide,
} from './layout';
import { type MetadataCopy, decodeMetadata, encodeMetadata } from './metadata-chunk';
import {
  TYPE_IDAT,
  TYPE_METADATA,
  writeBlockGap,
  writeChunk,
  writeChunkHeader,
  writeStoredHeader,
  zeroBlockCrc,
} from './png-chunks';
import { syncDir, syncFile, syncFileAsync } from './file-sync';
import { IntentLog } from './intents';
import { RangeGate } from './range-gate';
import { PLAN_CLUSTERS, RunPlan } from './run-plan';
import { adviseSpans, fastBlockSums, fixBlocks, runSpans, runSpansSync } from './span-io';

/** Spans of an advice this close are read as one (a page between them costs less than another I/O). */
const ADVISE_GAP = 4096;

import { buildHead, readExactly, readStructure, writeSuperblockChunk } from './structure';
import { type Superblock, isValidUuid, newUuid } from './superblock';

export interface CreateOptions {
  side: number;
  uuid?: string;
}

export interface OpenOptions {
  readOnly?: boolean;
}

/** Per-block flags. KNOWN: blockSumTable holds the block's sums as of the last checkpoint. */
const KNOWN = 1;
const DIRTY = 2;
/** Below this many dirty blocks a checkpoint skips the pre-pass (prefixAsync). */
const PREFIX_MIN_BLOCKS = 256;

export class MapContainer {
  readonly path: string;
  private fd: number;
  private readonly readOnly: boolean;
  private sb: Superblock;
  private layout: MapLayout;
  /** Adler-32 of the stream as of the last checkpoint, or null when it cannot be trusted (opened dirty). */
  private adler: StreamAdler | null;
  private recoveryNeeded: boolean;
  private blockFlags: Uint8Array;
  /** (S mod 65521, W mod 65521) per block, valid where KNOWN. */
  private blockSumTable: Uint16Array;
  private dirtyBlocks: number[] = [];
  /** Blocks [lo, hi) fixed by a pre-pass since the last checkpoint (the log needs their new sums). */
  private prefixed: [number, number] | null = null;
  private prefixing = false;
  /** Dirty lists taken so far (a write in flight across one marks its blocks again). */
  private passes = 0;
  private metadataLength: number;
  private readonly plan: RunPlan;
  /** RunPlans of the asynchronous calls: one per call in flight, kept for reuse (≈2 MiB each). */
  private readonly asyncPlans: RunPlan[] = [];
  private readonly sparePlans: RunPlan[] = [];
  private busyPlans = 0;
  private readonly spanGate = new RangeGate();
  private closed = false;
  private readonly sums = new Uint32Array(2);
  private readonly sbChunk = Buffer.alloc(CHUNK_OVERHEAD + SUPERBLOCK_LENGTH);
  private blockBuffer: Buffer | null = null;
  /** Null when read-only, or when no usable log existed at open (then recovery scans everything). */
  private intents: IntentLog | null = null;
  /** The log was loaded at open, so its marks and table describe this (dirty) map: recovery may use it. */
  private intentsAtOpen = false;
  /** Why the intent log is not in use, for the open report. */
  private intentsReason: string | null = null;

  private constructor(
    path: string,
    fd: number,
    readOnly: boolean,
    sb: Superblock,
    layout: MapLayout,
    adler: StreamAdler | null,
    metadataLength: number,
  ) {
    this.path = path;
    this.fd = fd;
    this.readOnly = readOnly;
    this.sb = sb;
    this.layout = layout;
    this.adler = adler;
    this.recoveryNeeded = sb.state === 'dirty';
    this.metadataLength = metadataLength;
    this.blockFlags = new Uint8Array(layout.blockCount);
    this.blockSumTable = new Uint16Array(2 * layout.blockCount);
    this.plan = new RunPlan(layout);
  }

  // ---- creation and opening ------------------------------------------------------------------

  /** Smallest valid side whose clusters hold `bytes`. */
  static sideForCapacity(bytes: number): number {
    if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0) {
      throw new ImapError('IMAP_E_INVALID', `capacity ${String(bytes)}`);
    }
    let side = MIN_SIDE;
    while (side * side * 4 < bytes) {
      side *= 2;
      if (side > MAX_SIDE) throw new ImapError('IMAP_E_NO_SPACE', `${bytes} bytes exceed the largest map`);
    }
    return side;
  }

  /**
   * mkfs: a valid, sparse PNG whose pixels are all zero. The file is sized with ftruncate and only
   * the framing is written: every full zero block shares one CRC, and the Adler-32 of zeros is closed-form.
   */
  static create(path: string, options: CreateOptions): MapContainer {
    const side = options?.side;
    if (!isValidSide(side)) {
      throw new ImapError(
        'IMAP_E_INVALID',
        `side ${String(side)} is not a power of two in ${MIN_SIDE}..${MAX_SIDE}`,
      );
    }
    const uuid = options.uuid ?? newUuid();
    if (typeof uuid !== 'string' || !isValidUuid(uuid))
      throw new ImapError('IMAP_E_INVALID', `uuid ${String(uuid)}`);
    const layout = new MapLayout(side);
    const sb: Superblock = {
      formatVersion: FORMAT_VERSION,
      flags: 0,
      state: 'clean',
      uuid: uuid.toLowerCase(),
      side,
      clusterSize: CLUSTER_SIZE,
      blockPayload: layout.blockPayload,
      generation: 0n,
      createdMs: Date.now(),
    };
    let fd: number;
    try {
      fd = openSync(path, 'wx+');
    } catch (err) {
      throw fromSystemError(err, `creating ${path}`);
    }
    try {
      writeZeroImage(fd, layout, sb);
      syncFile(fd, path);
      syncDir(path);
    } catch (err) {
      closeSync(fd);
      tryUnlink(path);
      throw toImapError(err, `creating ${path}`);
    }
    const adler = StreamAdler.ofZeros(layout.rawLength);
    const container = new MapContainer(path, fd, false, sb, layout, adler, -1);
    container.blockFlags.fill(KNOWN);
    try {
      // Sums of all-zero blocks are (0, 0): the fresh table is all zeros.
      container.intents = IntentLog.create(path, sb, layout, container.blockSumTable);
    } catch (err) {
      container.close();
      tryUnlink(path);
      throw err;
    }
    return container;
  }

  static open(path: string, options: OpenOptions = {}): MapContainer {
    const readOnly = options?.readOnly === true;
    let fd: number;
    try {
      fd = openSync(path, readOnly ? 'r' : 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ImapError('IMAP_E_MAP_MISSING', path, { cause: err });
      }
      throw fromSystemError(err, `opening ${path}`);
    }
    try {
      const size = fstatSync(fd).size;
      const s = readStructure(fd, size);
      const adler = s.superblock.state === 'clean' ? StreamAdler.fromValue(s.storedAdler) : null;
      const container = new MapContainer(path, fd, readOnly, s.superblock, s.layout, adler, s.metadataLength);
      if (!readOnly) container.loadIntents();
      return container;
    } catch (err) {
      closeSync(fd);
      throw toImapError(err, `opening ${path}`);
    }
  }

  /** Takes the intent log's table as every block's sums, or records why there is no usable log. */
  private loadIntents(): void {
    const opened = IntentLog.open(this.path, this.sb, this.layout);
    if (opened.log === null) {
      this.intentsReason = opened.reason;
      return;
    }
    this.intents = opened.log;
    this.intentsAtOpen = true;
    this.blockSumTable = opened.table;
    this.blockFlags.fill(KNOWN);
  }

  /** How the next (or last) recovery finds its work: from the intent log, or by a full scan and why. */
  get intentStatus(): { inUse: boolean; reason: string | null } {
    return { inUse: this.intents !== null, reason: this.intentsReason };
  }

  /** verify() for a path, folding open() failures (missing, truncated, not a map…) into the report. */
  static verifyFile(path: string, onProgress?: ProgressFn): ContainerReport {
    let container: MapContainer;
    try {
      container = MapContainer.open(path, { readOnly: true });
    } catch (err) {
      const e = toImapError(err, `opening ${path}`);
      return { ok: false, problems: [{ code: e.code, where: e.detail ?? path }] };
    }
    try {
      return container.verify(onProgress);
    } finally {
      container.close();
    }
  }

  // ---- geometry ------------------------------------------------------------------------------

  get superblock(): Readonly<Superblock> {
    return { ...this.sb };
  }

  get side(): number {
    return this.layout.side;
  }

  get clusterCount(): number {
    return this.layout.clusterCount;
  }

  /** The superblock said dirty at open (a crash since the last checkpoint) and nothing fixed it yet. */
  get needsRecovery(): boolean {
    return this.recoveryNeeded;
  }

  // ---- cluster I/O ---------------------------------------------------------------------------

  /** Reads clusters [first, first+count) into out at outOffset. */
  readClusters(first: number, count: number, out: Buffer, outOffset = 0): void {
    this.readPlanned(first, count, out, outOffset, (plan) => {
      for (let s = 0; s < plan.spanCount; s++) {
        readExactly(
          this.fd,
          plan.scratch,
          plan.spanScratch[s],
          plan.spanLength[s],
          plan.spanFile[s],
          'clusters',
        );
      }
    });
  }

  /**
   * readClusters with each plan's spans as one batch through the span-io addon, on this thread: the
   * scheduler's path for a lone request. A batch not in the page cache is announced to the kernel
   * whole (deep device queue) instead of read one span at a time.
   */
  readClustersBatched(first: number, count: number, out: Buffer, outOffset = 0): void {
    this.readPlanned(first, count, out, outOffset, (plan) =>
      runSpansSync(this.fd, plan.allSpans(), 'clusters'),
    );
  }

  private readPlanned(
    first: number,
    count: number,
    out: Buffer,
    outOffset: number,
    readSpans: (plan: RunPlan) => void,
  ): void {
    this.assertOpen();
    this.checkRun(first, count);
    checkBuffer(out, outOffset, count, 'out');
    const plan = this.plan;
    for (let done = 0; done < count; done += PLAN_CLUSTERS) {
      plan.plan(first + done, Math.min(PLAN_CLUSTERS, count - done), false);
      readSpans(plan);
      plan.gather(out, outOffset + done * CLUSTER_SIZE);
    }
  }

  /** Writes `count` clusters (default: as many whole clusters as data holds after dataOffset) in place. */
  writeClusters(first: number, data: Buffer, dataOffset = 0, count?: number): void {
    const n = this.beginWrite(first, data, dataOffset, count);
    if (n === 0) return;
    const plan = this.plan;
    for (let done = 0; done < n; done += PLAN_CLUSTERS) {
      const k = Math.min(PLAN_CLUSTERS, n - done);
      plan.plan(first + done, k, true);
      for (let s = 0; s < plan.spanCount; s++) this.touchBlocks(plan.spanRawStart[s], plan.spanRawEnd[s]);
      runSpansSync(this.fd, plan.partialSpans(), 'span');
      plan.scatter(data, dataOffset + done * CLUSTER_SIZE);
      runSpansSync(this.fd, plan.allSpans(), this.path, true);
    }
  }

  // ---- asynchronous cluster I/O (the scheduler's parallel executor) ----------------------------

  /**
   * readClusters off this thread: the spans go to the libuv thread pool as one batch (span-io.ts),
   * so several calls proceed at once. The caller orders calls that touch the same clusters
   * (RangeGate) and keeps checkpoint, growth and close away while any is in flight.
   */
  async readClustersAsync(first: number, count: number, out: Buffer, outOffset = 0): Promise<void> {
    this.assertOpen();
    this.checkRun(first, count);
    checkBuffer(out, outOffset, count, 'out');
    const plan = this.takePlan();
    try {
      for (let done = 0; done < count; done += PLAN_CLUSTERS) {
        const n = Math.min(PLAN_CLUSTERS, count - done);
        plan.plan(first + done, n, false);
        await runSpans(this.fd, false, plan.allSpans(), 'clusters');
        plan.gather(out, outOffset + done * CLUSTER_SIZE);
      }
    } finally {
      this.givePlan(plan);
    }
  }

  /**
   * Has the kernel start reading clusters [first, first + count) into the page cache (span-io.ts
   * adviseSpans); resolves, once the advice was given, to the spans it refused. Plans here, on the
   * caller's thread; the advice runs in the pool. Nothing is read into memory of ours.
   */
  adviseClusters(first: number, count: number): Promise<number> {
    this.assertOpen();
    this.checkRun(first, count);
    const plan = this.takePlan();
    const starts: number[] = [];
    const ends: number[] = [];
    try {
      for (let done = 0; done < count; done += PLAN_CLUSTERS) {
        plan.plan(first + done, Math.min(PLAN_CLUSTERS, count - done), false);
        for (let s = 0; s < plan.spanCount; s++) {
          starts.push(plan.spanFile[s]!);
          ends.push(plan.spanFile[s]! + plan.spanLength[s]!);
        }
      }
    } finally {
      this.givePlan(plan);
    }
    // Neighbouring 1 MiB plans share image rows: merged, a row's pieces become one long read.
    const order = starts.map((_, i) => i).sort((a, b) => starts[a]! - starts[b]!);
    const offsets = new Float64Array(order.length);
    const lengths = new Int32Array(order.length);
    let n = 0;
    for (const i of order) {
      const a = starts[i]!;
      const b = ends[i]!;
      if (n > 0 && a <= offsets[n - 1]! + lengths[n - 1]! + ADVISE_GAP) {
        lengths[n - 1] = Math.max(lengths[n - 1]!, b - offsets[n - 1]!);
      } else {
        offsets[n] = a;
        lengths[n] = b - a;
        n++;
      }
    }
    return adviseSpans(this.fd, offsets, lengths, n);
  }

  /**
   * writeClusters off this thread. A write span may carry bytes of neighbouring clusters (gaps it
   * reads and writes back whole), so writes whose spans overlap in the file are serialized by the
   * container's own gate, whatever clusters they are for; writes elsewhere run at once.
   */
  async writeClustersAsync(first: number, data: Buffer, dataOffset = 0, count?: number): Promise<void> {
    const n = this.beginWrite(first, data, dataOffset, count);
    if (n === 0) return;
    const plan = this.takePlan();
    try {
      for (let done = 0; done < n; done += PLAN_CLUSTERS) {
        const k = Math.min(PLAN_CLUSTERS, n - done);
        plan.plan(first + done, k, true);
        const ticket = await this.spanGate.enter({ writes: [plan.hull()] });
        try {
          for (let s = 0; s < plan.spanCount; s++) this.touchBlocks(plan.spanRawStart[s], plan.spanRawEnd[s]);
          const pass = this.passes;
          await runSpans(this.fd, false, plan.partialSpans(), 'span');
          plan.scatter(data, dataOffset + done * CLUSTER_SIZE);
          await runSpans(this.fd, true, plan.allSpans(), `${this.path}`);
          // A pre-pass took the dirty list while these bytes were on their way: it may have read
          // the blocks before they landed, so they are dirty again.
          if (this.passes !== pass) {
            for (let s = 0; s < plan.spanCount; s++)
              this.touchBlocks(plan.spanRawStart[s], plan.spanRawEnd[s]);
          }
        } finally {
          ticket.leave();
        }
      }
    } finally {
      this.givePlan(plan);
    }
  }

  /**
   * The checks both write paths share: writable, a Buffer, a valid offset and run. Returns the
   * cluster count; unless it is 0, the superblock is marked dirty before any pixel is written.
   */
  private beginWrite(first: number, data: Buffer, dataOffset: number, count: number | undefined): number {
    this.assertWritable();
    if (!Buffer.isBuffer(data)) throw new ImapError('IMAP_E_INVALID', 'data must be a Buffer');
    if (!Number.isInteger(dataOffset) || dataOffset < 0 || dataOffset > data.length) {
      throw new ImapError('IMAP_E_INVALID', `data offset ${String(dataOffset)}`);
    }
    const n = count ?? Math.floor((data.length - dataOffset) / CLUSTER_SIZE);
    this.checkRun(first, n);
    checkBuffer(data, dataOffset, n, 'data');
    if (n > 0) {
      this.intents?.markClusters(first, n);
      this.markDirty();
    }
    return n;
  }

  /** Asynchronous calls in flight; checkpoint, growth, sync and close expect none. */
  get asyncInFlight(): number {
    return this.busyPlans;
  }

  private takePlan(): RunPlan {
    this.busyPlans++;
    const plan = this.sparePlans.pop();
    if (plan) return plan;
    const fresh = new RunPlan(this.layout);
    this.asyncPlans.push(fresh);
    return fresh;
  }

  private givePlan(plan: RunPlan): void {
    this.busyPlans--;
    this.sparePlans.push(plan);
  }

  private assertQuiet(what: string): void {
    if (this.busyPlans > 0) {
      throw new ImapError(
        'IMAP_E_INTERNAL',
        `${what} of ${this.path} with ${this.busyPlans} asynchronous cluster I/O calls in flight`,
      );
    }
  }

  // ---- checkpoint and recovery ---------------------------------------------------------------

  /**
   * Makes the file a valid PNG again: CRCs of the chunks written since the last checkpoint, the
   * Adler-32 (updated from per-block sums, without rereading the image), optionally a new imMD;
   * then state=clean and generation+1, durably.
   */
  checkpoint(metadata?: MetadataCopy): void {
    this.assertWritable();
    this.assertQuiet('checkpoint');
    const encoded = metadata === undefined ? null : encodeMetadata(metadata);
    let changed: [number, number];
    if (this.adler === null) {
      // Opened dirty: the stored Adler-32 is stale, so only a repair can produce it.
      this.repair();
      changed = [0, this.layout.blockCount];
    } else {
      changed = this.fixDirtyBlocks(this.adler);
    }
    this.finishCheckpoint(encoded, changed);
  }

  /**
   * checkpoint with the pass over written blocks on pool threads, in parallel (block_fix.c). The
   * caller keeps every other request on this map away until it settles (the scheduler's barrier).
   */
  async checkpointAsync(metadata?: MetadataCopy): Promise<void> {
    this.assertWritable();
    this.assertQuiet('checkpoint');
    if (this.adler === null) return this.checkpoint(metadata);
    const encoded = metadata === undefined ? null : encodeMetadata(metadata);
    const changed = await this.fixDirtyBlocksAsync(this.adler);
    this.finishCheckpoint(encoded, changed);
  }

  /**
   * The checkpoint's pass over the blocks written so far, and an fsync, while writes go on (the
   * caller keeps only growth and close away). A block written meanwhile is dirty again, so the
   * checkpoint that follows fixes it once more; that one then has only the blocks written since
   * this started to read, and only their pages to flush. Not a checkpoint: the map stays dirty.
   */
  async prefixAsync(): Promise<void> {
    this.assertWritable();
    // A few blocks are cheaper to fix once, under the barrier, than to fix and flush twice.
    // One pass at a time: two folding the same block's sums out of order would leave stale ones.
    if (this.adler === null || this.dirtyBlocks.length < PREFIX_MIN_BLOCKS || this.prefixing) return;
    this.prefixing = true;
    try {
      this.prefixed = widen(await this.fixDirtyBlocksAsync(this.adler), this.prefixed);
      await this.syncAsync();
    } finally {
      this.prefixing = false;
    }
  }

  /** The rest of a checkpoint once the written blocks' CRCs and the Adler-32 are right. */
  private finishCheckpoint(encoded: Buffer | null, fixed: [number, number]): void {
    const generation = this.sb.generation + 1n;
    if (encoded !== null) this.writeMetadataTail(encoded);
    this.sync();
    const changed = widen(fixed, this.prefixed);
    this.prefixed = null;
    this.commitIntents(generation, changed);
    this.sb.state = 'clean';
    this.sb.generation = generation;
    this.writeSuperblock();
    this.recoveryNeeded = false;
  }

  /**
   * Rewrites every CRC and framing byte that disagrees, and the Adler-32. After a crash (the map was
   * opened dirty) with a usable intent log, only the blocks of marked regions are read; otherwise,
   * or with `full` (fsck --repair: damage may be anywhere), the whole map.
   */
  repairChecksums(onProgress?: ProgressFn, full = false): RepairReport {
    this.assertWritable();
    const report = this.repair(onProgress, full);
    this.commitIntents(this.sb.generation, [0, this.layout.blockCount]);
    this.sb.state = 'clean';
    this.writeSuperblock();
    this.recoveryNeeded = false;
    return report;
  }

  /**
   * Before the superblock records `generation`: the log gets the new sums of blocks [lo, hi), or,
   * if there was none (every block's sums are known after a full repair), a fresh one.
   */
  private commitIntents(generation: bigint, [lo, hi]: [number, number]): void {
    if (this.readOnly) return;
    this.intentsAtOpen = false;
    try {
      if (this.intents !== null) {
        this.intents.commit(this.blockSumTable, generation, lo, hi);
      } else if (this.allSumsKnown()) {
        this.intents = IntentLog.create(
          this.path,
          { ...this.sb, generation },
          this.layout,
          this.blockSumTable,
        );
        this.intentsReason = null;
      }
    } catch (err) {
      // The checkpoint itself stands; only the recovery shortcut is lost: a log cut short fails its
      // CRCs at the next open (full scan, then rebuilt), and no more marks are written meanwhile.
      this.intents?.close();
      this.intents = null;
      this.intentsReason = `intent log not written at the checkpoint: ${toImapError(err, 'intent log').message}`;
    }
  }

  private allSumsKnown(): boolean {
    for (const f of this.blockFlags) if ((f & KNOWN) === 0) return false;
    return true;
  }

  verify(onProgress?: ProgressFn): ContainerReport {
    this.assertOpen();
    const result = scanContainer(this.fd, this.layout, {
      repair: false,
      superblock: this.sb,
      scratch: this.plan.scratch,
      onProgress,
      // Sums of a clean block are its checkpointed sums: cache them for later pre-images.
      onBlockSums: (blk, s, w) => {
        if ((this.blockFlags[blk] & DIRTY) === 0) this.setSums(blk, s, w);
      },
    });
    return { ok: result.problems.length === 0, problems: result.problems };
  }

  readMetadataChunk(): MetadataCopy | null {
    this.assertOpen();
    if (this.metadataLength < 0) return null;
    const chunk = Buffer.alloc(CHUNK_OVERHEAD + this.metadataLength);
    readExactly(this.fd, chunk, 0, chunk.length, this.layout.tailOffset, 'metadata chunk');
    const dataEnd = CHUNK_HEADER + this.metadataLength;
    if (crc32(chunk.subarray(4, dataEnd)) !== chunk.readUInt32BE(dataEnd)) {
      throw new ImapError('IMAP_E_CORRUPT_METADATA', 'imMD CRC mismatch');
    }
    return decodeMetadata(chunk.subarray(CHUNK_HEADER, dataEnd));
  }

  // ---- growth --------------------------------------------------------------------------------

  /**
   * Doubles (or more) the side. Written as PATH.grow-tmp, fsync'd, renamed over PATH, directory
   * fsync'd: a crash leaves either the old map or the new one. Cluster numbers and bytes are kept
   * (the orientation rule keeps every old pixel at the same (x, y)); generation is unchanged because
   * no metadata changed.
   */
  grow(newSide: number): void {
    this.assertWritable();
    this.assertQuiet('growth');
    if (!isValidSide(newSide) || newSide <= this.layout.side) {
      throw new ImapError('IMAP_E_INVALID', `cannot grow a ${this.layout.side}² map to ${String(newSide)}`);
    }
    const oldLayout = this.layout;
    const newLayout = new MapLayout(newSide, oldLayout.blockPayload);
    const tmp = `${this.path}.grow-tmp`;
    const tail = this.readTailBytes();
    const sb: Superblock = { ...this.sb, side: newSide, state: 'clean' };
    const flags = new Uint8Array(newLayout.blockCount).fill(KNOWN);
    const table = new Uint16Array(2 * newLayout.blockCount);
    let fd: number;
    try {
      fd = openSync(tmp, 'w+');
    } catch (err) {
      throw fromSystemError(err, `creating ${tmp}`);
    }
    let adler: StreamAdler;
    try {
      adler = this.copyGrown(fd, oldLayout, newLayout, sb, tail, table);
      syncFile(fd, tmp);
      closeSync(fd);
    } catch (err) {
      closeSync(fd);
      tryUnlink(tmp);
      throw toImapError(err, `growing ${this.path}`);
    }
    try {
      renameSync(tmp, this.path);
      syncDir(this.path);
    } catch (err) {
      tryUnlink(tmp);
      throw fromSystemError(err, `replacing ${this.path}`);
    }
    closeSync(this.fd);
    try {
      this.fd = openSync(this.path, 'r+');
    } catch (err) {
      this.closed = true;
      throw fromSystemError(err, `reopening ${this.path}`);
    }
    this.sb = sb;
    this.layout = newLayout;
    this.adler = adler;
    this.recoveryNeeded = false;
    this.blockFlags = flags;
    this.blockSumTable = table;
    this.dirtyBlocks = [];
    this.prefixed = null;
    this.plan.setLayout(newLayout);
    for (const plan of this.asyncPlans) plan.setLayout(newLayout);
    // The old log describes the old geometry (open rejects it); a crash before this line just means
    // the next recovery scans everything.
    this.intents?.close();
    this.intents = null;
    this.intentsAtOpen = false;
    try {
      this.intents = IntentLog.create(this.path, sb, newLayout, table);
      this.intentsReason = null;
    } catch (err) {
      // The map did grow; only the recovery shortcut is lost (a later crash means a full scan, and
      // the next full repair rebuilds the log). Shown by intentStatus (imapfs info).
      this.intentsReason = `intent log not rewritten after growth: ${toImapError(err, 'intent log').message}`;
    }
  }

  // ---- lifetime ------------------------------------------------------------------------------

  sync(): void {
    this.assertOpen();
    syncFile(this.fd, this.path);
  }

  /**
   * fsync on the thread pool: this thread goes on serving reads and writes meanwhile. The caller
   * keeps the file from being closed or replaced (grow) until it settles.
   */
  async syncAsync(): Promise<void> {
    this.assertOpen();
    await syncFileAsync(this.fd, this.path);
  }

  /** Closes the file. Does not checkpoint: a map closed dirty is repaired at the next open. */
  close(): void {
    if (this.closed) return;
    this.assertQuiet('close');
    this.closed = true;
    this.intents?.close();
    try {
      closeSync(this.fd);
    } catch (err) {
      throw fromSystemError(err, `closing ${this.path}`);
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new ImapError('IMAP_E_INVALID', `map ${this.path} is closed`);
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.readOnly) throw new ImapError('IMAP_E_READ_ONLY', `map ${this.path} was opened read-only`);
  }

  private checkRun(first: number, count: number): void {
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0) {
      throw new ImapError('IMAP_E_INVALID', `cluster run (${String(first)}, ${String(count)})`);
    }
    if (first + count > this.layout.clusterCount) {
      throw new ImapError(
        'IMAP_E_INVALID',
        `clusters ${first}..${first + count - 1} beyond the map's ${this.layout.clusterCount}`,
      );
    }
  }

  private put(buf: Buffer, off: number, len: number, pos: number): void {
    try {
      let done = 0;
      while (done < len) done += writeSync(this.fd, buf, off + done, len - done, pos + done);
    } catch (err) {
      throw fromSystemError(err, `writing ${this.path} at ${pos}`);
    }
  }

  private writeSuperblock(): void {
    writeSuperblockChunk(this.sbChunk, 0, this.sb);
    this.put(this.sbChunk, 0, this.sbChunk.length, SUPERBLOCK_CHUNK_OFFSET);
    // The file size does not change here, so fdatasync is enough to make the state durable.
    try {
      fdatasyncSync(this.fd);
    } catch (err) {
      throw fromSystemError(err, `fdatasync ${this.path}`);
    }
  }

  /** Before the first pixel write after a checkpoint: the next open must know checksums may be stale. */
  private markDirty(): void {
    if (this.sb.state === 'dirty') return;
    this.sb.state = 'dirty';
    this.writeSuperblock();
  }

  private setSums(blk: number, s: number, w: number): void {
    this.blockSumTable[2 * blk] = s;
    this.blockSumTable[2 * blk + 1] = w;
    this.blockFlags[blk] |= KNOWN;
  }

  /**
   * Marks the blocks of raw range [rawStart, rawEnd) dirty. A block's sums as of the last checkpoint
   * (its pre-image) are needed to update the Adler-32; if not cached, read the block now, before
   * it is overwritten.
   */
  private touchBlocks(rawStart: number, rawEnd: number): void {
    const L = this.layout;
    const last = Math.floor((rawEnd - 1) / L.blockPayload);
    for (let blk = Math.floor(rawStart / L.blockPayload); blk <= last; blk++) {
      const f = this.blockFlags[blk];
      if ((f & DIRTY) !== 0) continue;
      if ((f & KNOWN) === 0 && this.adler !== null) {
        const buf = this.blockScratch();
        const len = L.blockLength(blk);
        readExactly(this.fd, buf, 0, len, L.fileOffsetOfRaw(L.blockRawOffset(blk)), 'block pre-image');
        blockSums(buf, 0, len, this.sums);
        this.setSums(blk, this.sums[0], this.sums[1]);
      }
      this.blockFlags[blk] = f | DIRTY;
      this.dirtyBlocks.push(blk);
    }
  }

  private blockScratch(): Buffer {
    if (this.blockBuffer === null) this.blockBuffer = Buffer.allocUnsafe(this.layout.blockStride);
    return this.blockBuffer;
  }

  /**
   * CRC and sums of every dirty block, in file order, contiguous runs read in one syscall. Returns
   * the block range [lo, hi) whose sums may have changed.
   */
  private fixDirtyBlocks(adler: StreamAdler): [number, number] {
    const L = this.layout;
    const { dirty, changed } = this.sortedDirtyBlocks();
    const win = this.plan.scratch;
    const perWindow = Math.max(1, Math.floor(win.length / L.blockStride));
    const crcBuf = Buffer.allocUnsafe(4);
    try {
      let i = 0;
      while (i < dirty.length) {
        let j = i + 1;
        while (j < dirty.length && dirty[j] === dirty[j - 1] + 1 && j - i < perWindow) j++;
        const b0 = dirty[i];
        const b1 = dirty[j - 1];
        const start = L.blockChunkOffset(b0);
        const end = L.blockChunkOffset(b1) + CHUNK_OVERHEAD + STORED_HEADER + L.blockLength(b1);
        readExactly(this.fd, win, 0, end - start, start, 'dirty blocks');
        for (let blk = b0; blk <= b1; blk++) {
          const c = L.blockChunkOffset(blk) - start;
          const len = L.blockLength(blk);
          const crcAt = c + CHUNK_HEADER + STORED_HEADER + len;
          crcBuf.writeUInt32BE(crc32(win.subarray(c + 4, crcAt)), 0);
          this.put(crcBuf, 0, 4, start + crcAt);
          fastBlockSums(win, c + CHUNK_HEADER + STORED_HEADER, len, this.sums);
          this.foldBlockSums(adler, blk, this.sums[0], this.sums[1]);
        }
        i = j;
      }
    } catch (err) {
      this.redirty(dirty);
      throw err;
    }
    this.writeAdler(adler);
    return changed;
  }

  /** fixDirtyBlocks with the reads, CRCs and sums in block_fix.c; the same result. */
  private async fixDirtyBlocksAsync(adler: StreamAdler): Promise<[number, number]> {
    const L = this.layout;
    const { dirty, changed } = this.sortedDirtyBlocks();
    const n = dirty.length;
    const offsets = new Float64Array(n);
    const lengths = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      offsets[i] = L.blockChunkOffset(dirty[i]);
      lengths[i] = L.blockLength(dirty[i]);
    }
    const sums = new Uint32Array(2 * n);
    try {
      await fixBlocks(
        this.fd,
        offsets,
        lengths,
        n,
        sums,
        `the checksums of the dirty blocks of ${this.path}`,
      );
    } catch (err) {
      this.redirty(dirty);
      throw err;
    }
    for (let i = 0; i < n; i++) this.foldBlockSums(adler, dirty[i], sums[2 * i], sums[2 * i + 1]);
    this.writeAdler(adler);
    return changed;
  }

  /** A pass that failed part way: its blocks are dirty again (a fixed one is just fixed twice). */
  private redirty(blocks: Uint32Array): void {
    for (const blk of blocks) {
      if ((this.blockFlags[blk] & DIRTY) !== 0) continue;
      this.blockFlags[blk] |= DIRTY;
      this.dirtyBlocks.push(blk);
    }
  }

  /** The blocks written since the last checkpoint, ascending, and the range [first, last + 1). */
  private sortedDirtyBlocks(): { dirty: Uint32Array; changed: [number, number] } {
    const dirty = Uint32Array.from(this.dirtyBlocks).sort();
    // From here a write to one of them marks it dirty again (a pre-pass runs alongside writes).
    for (const blk of dirty) this.blockFlags[blk] &= ~DIRTY;
    this.dirtyBlocks = [];
    this.passes++;
    const n = dirty.length;
    return { dirty, changed: n === 0 ? [0, 0] : [dirty[0], dirty[n - 1] + 1] };
  }

  /** A fixed block's new sums replace its old ones in the stream's Adler-32 and in the table. */
  private foldBlockSums(adler: StreamAdler, blk: number, s: number, w: number): void {
    const coef = blockCoefficient(this.layout.rawLength, this.layout.blockRawOffset(blk));
    adler.replace(coef, this.blockSumTable[2 * blk], this.blockSumTable[2 * blk + 1], s, w);
    this.setSums(blk, s, w);
  }

  private writeAdler(adler: StreamAdler): void {
    const chunk = Buffer.alloc(CHUNK_OVERHEAD + 4);
    const value = Buffer.alloc(4);
    value.writeUInt32BE(adler.value, 0);
    writeChunk(chunk, 0, TYPE_IDAT, value);
    this.put(chunk, 0, chunk.length, this.layout.adlerChunkOffset);
  }

  /** The repair scan: only the intent log's blocks when the log describes this crash, else all. */
  private repair(onProgress?: ProgressFn, full = false): RepairReport {
    const only =
      !full && this.intents !== null && this.intentsAtOpen && this.recoveryNeeded
        ? { blocks: this.intents.blocksToRescan(), sums: this.blockSumTable }
        : undefined;
    const result = scanContainer(this.fd, this.layout, {
      repair: true,
      superblock: this.sb,
      scratch: this.plan.scratch,
      onProgress,
      onBlockSums: (blk, s, w) => this.setSums(blk, s, w),
      only,
    });
    this.blockFlags.fill(KNOWN);
    this.dirtyBlocks = [];
    this.prefixed = null;
    // Not null: repair throws on truncation, the only case without a computed Adler-32.
    this.adler = result.adler ?? StreamAdler.ofZeros(this.layout.rawLength);
    this.metadataLength = result.metadataLength;
    this.sync();
    return {
      chunksFixed: result.chunksFixed,
      adlerFixed: result.adlerFixed,
      metadataDropped: result.metadataDropped,
      scope: only ? 'intents' : 'full',
      blocksScanned: only ? only.blocks.length : this.layout.blockCount,
      blockCount: this.layout.blockCount,
    };
  }

  /**
   * New imMD + IEND at the tail. Written first and truncated after (not the reverse), so a crash in
   * between leaves either a longer file with the new tail or one with a torn imMD that repair drops;
   * the file never lacks an IEND for longer than the write itself.
   */
  private writeMetadataTail(encoded: Buffer): void {
    const tail = Buffer.allocUnsafe(CHUNK_OVERHEAD + encoded.length + IEND_CHUNK.length);
    const at = writeChunk(tail, 0, TYPE_METADATA, encoded);
    IEND_CHUNK.copy(tail, at);
    this.put(tail, 0, tail.length, this.layout.tailOffset);
    try {
      ftruncateSync(this.fd, this.layout.tailOffset + tail.length);
    } catch (err) {
      throw fromSystemError(err, `truncating ${this.path}`);
    }
    this.metadataLength = encoded.length;
  }

  /** The current tail (imMD if any, then IEND), for growth to carry over. */
  private readTailBytes(): Buffer {
    const len = (this.metadataLength >= 0 ? CHUNK_OVERHEAD + this.metadataLength : 0) + IEND_CHUNK.length;
    const buf = Buffer.alloc(len);
    readExactly(this.fd, buf, 0, len, this.layout.tailOffset, 'tail');
    return buf;
  }

  /**
   * Writes the grown map into fd: new row y = old row y + zeros, rows ≥ old side all zero. Blocks
   * that end up all zero get only their framing (sparse); the rest are written whole. Returns the
   * Adler-32 and fills `table` with every block's sums.
   */
  private copyGrown(
    fd: number,
    oldL: MapLayout,
    newL: MapLayout,
    sb: Superblock,
    tail: Buffer,
    table: Uint16Array,
  ): StreamAdler {
    const P = newL.blockPayload;
    writeZeroImage(fd, newL, sb, tail);
    const chunk = Buffer.alloc(newL.blockStride);
    const zeros = Buffer.alloc(P);
    const payloadAt = CHUNK_HEADER + STORED_HEADER;
    const adler = StreamAdler.ofZeros(newL.rawLength);
    const oldPixelsEnd = oldL.side * newL.rowLength;
    const oldRowBytes = 4 * oldL.side;
    for (let blk = 0; blk < newL.blockCount; blk++) {
      const r0 = blk * P;
      if (r0 >= oldPixelsEnd) break; // the rest is zeros, already framed by writeZeroImage
      const len = newL.blockLength(blk);
      const r1 = r0 + len;
      chunk.fill(0, payloadAt, payloadAt + len);
      let any = false;
      for (let y = Math.floor(r0 / newL.rowLength); y < oldL.side && y * newL.rowLength < r1; y++) {
        const pixStart = y * newL.rowLength + 1;
        const a = Math.max(r0, pixStart);
        const b = Math.min(r1, pixStart + oldRowBytes);
        if (a >= b) continue;
        this.readRaw(oldL.rawOffsetOfPixel(0, y) + (a - pixStart), b - a, chunk, payloadAt + (a - r0));
        any = true;
      }
      if (!any) continue;
      blockSums(chunk, payloadAt, len, this.sums);
      // Zero blocks keep the framing writeZeroImage gave them and stay holes.
      if (this.sums[0] === 0 && chunk.compare(zeros, 0, len, payloadAt, payloadAt + len) === 0) continue;
      const final = blk === newL.blockCount - 1;
      writeChunkHeader(chunk, 0, TYPE_IDAT, STORED_HEADER + len);
      writeStoredHeader(chunk, CHUNK_HEADER, len, final);
      chunk.writeUInt32BE(crc32(chunk.subarray(4, payloadAt + len)), payloadAt + len);
      writeAll(fd, chunk, 0, payloadAt + len + 4, newL.blockChunkOffset(blk));
      table[2 * blk] = this.sums[0];
      table[2 * blk + 1] = this.sums[1];
      adler.replace(blockCoefficient(newL.rawLength, r0), 0, 0, this.sums[0], this.sums[1]);
    }
    // The Adler chunk was written for zeros; replace it with the real value.
    const adlerChunk = Buffer.alloc(CHUNK_OVERHEAD + 4);
    const value = Buffer.alloc(4);
    value.writeUInt32BE(adler.value, 0);
    writeChunk(adlerChunk, 0, TYPE_IDAT, value);
    writeAll(fd, adlerChunk, 0, adlerChunk.length, newL.adlerChunkOffset);
    return adler;
  }

  /** Reads raw stream bytes of this (old) map, one syscall per stored block touched. */
  private readRaw(raw: number, len: number, dst: Buffer, dstOff: number): void {
    const L = this.layout;
    let done = 0;
    while (done < len) {
      const r = raw + done;
      const room = L.blockPayload - (r % L.blockPayload);
      const n = Math.min(room, len - done);
      readExactly(this.fd, dst, dstOff + done, n, L.fileOffsetOfRaw(r), 'pixels for growth');
      done += n;
    }
  }
}

// ---- file helpers ------------------------------------------------------------------------------

/**
 * Writes the structure of an all-zero map into an empty fd: head, framing of every data chunk
 * (zero payloads stay holes), the Adler-32 of zeros, then `tail` (default: a bare IEND).
 */
function writeZeroImage(fd: number, layout: MapLayout, sb: Superblock, tail?: Buffer): void {
  const tailBytes = tail ?? IEND_CHUNK;
  const size = layout.tailOffset + tailBytes.length;
  try {
    ftruncateSync(fd, size);
  } catch (err) {
    throw fromSystemError(err, 'sizing the map file');
  }
  const head = buildHead(sb);
  const first = Buffer.alloc(head.length + CHUNK_HEADER + STORED_HEADER);
  head.copy(first, 0);
  const lastBlock = layout.blockCount - 1;
  writeChunkHeader(first, head.length, TYPE_IDAT, STORED_HEADER + layout.blockLength(0));
  writeStoredHeader(first, head.length + CHUNK_HEADER, layout.blockLength(0), lastBlock === 0);
  writeAll(fd, first, 0, first.length, 0);

  const fullCrc = zeroBlockCrc(layout.blockPayload, false);
  const gap = Buffer.alloc(BLOCK_GAP);
  for (let blk = 1; blk <= lastBlock; blk++) {
    writeBlockGap(gap, 0, fullCrc, layout.blockLength(blk), blk === lastBlock);
    writeAll(fd, gap, 0, BLOCK_GAP, layout.blockChunkOffset(blk) - 4);
  }
  const end = Buffer.alloc(4 + CHUNK_OVERHEAD + 4 + tailBytes.length);
  end.writeUInt32BE(zeroBlockCrc(layout.lastBlockLength, true), 0);
  const value = Buffer.alloc(4);
  value.writeUInt32BE(StreamAdler.ofZeros(layout.rawLength).value, 0);
  const at = writeChunk(end, 4, TYPE_IDAT, value);
  tailBytes.copy(end, at);
  writeAll(fd, end, 0, end.length, layout.adlerChunkOffset - 4);
}

function writeAll(fd: number, buf: Buffer, off: number, len: number, pos: number): void {
  try {
    let done = 0;
    while (done < len) done += writeSync(fd, buf, off + done, len - done, pos + done);
  } catch (err) {
    throw fromSystemError(err, `writing at ${pos}`);
  }
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Best effort cleanup of our own partial file; the original error is what the caller needs.
    return;
  }
}

function checkBuffer(buf: Buffer, offset: number, count: number, name: string): void {
  if (!Buffer.isBuffer(buf)) throw new ImapError('IMAP_E_INVALID', `${name} must be a Buffer`);
  if (!Number.isInteger(offset) || offset < 0 || offset + count * CLUSTER_SIZE > buf.length) {
    throw new ImapError(
      'IMAP_E_INVALID',
      `${name} buffer of ${buf.length} bytes cannot hold ${count} clusters at offset ${String(offset)}`,
    );
  }
}

function toImapError(err: unknown, detail: string): ImapError {
  if (isImapError(err)) return err;
  if (err instanceof RangeError || err instanceof TypeError) {
    return new ImapError('IMAP_E_INTERNAL', `${detail}: ${err.message}`, { cause: err });
  }
  return fromSystemError(err, detail);
}

/** The smallest block range holding both (an empty range [x, x) adds nothing). */
function widen(a: [number, number], b: [number, number] | null): [number, number] {
  if (b === null || b[0] >= b[1]) return a;
  if (a[0] >= a[1]) return b;
  return [Math.min(a[0], b[0]), Math.max(a[1], b[1])];
}
