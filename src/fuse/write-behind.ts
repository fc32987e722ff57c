/**
 * Write-behind: FUSE writes land in slab slots (one open buffer per file, growing while writes are
 * contiguous) and reach the map in the background, a buffer at a time, through the copy-on-write
 * data path: journal.prepareWrite → scheduler.write → journal.commitWrite.
 *
 *   write ─▶ open buffer ─(full, non-contiguous write, flush, fsync, read, idle)─▶ detached
 *        detached ─▶ pieces ─(per-file pipeline)─▶ committed ─▶ slot freed
 *
 *   per-file pipeline, pieces 1, 2, 3 of a sequential stream:
 *     1: prepare ── map write ─────── commit
 *     2:            prepare ── map write ─────── commit
 *     3:                       prepare ── map write ─────── commit
 *
 * Memory is bounded by the slab: a writer waits for a free slot instead of memory growing
 * (io.max_dirty_bytes sets the slot count). Errors of a background flush are kept per file and
 * reported by the next flush/fsync/close of that file, like the kernel's own writeback errors; they
 * are also logged and counted at once. The next write to that file fails with it too.
 *
 * Ownership: main thread. A file's prepares and commits each run in submission order; only map
 * writes overlap. The data path reads the live content of a partial head or tail cluster at prepare
 * time, so a piece sharing a cluster with one still in flight waits for that one's commit first: writes
 * to the same clusters apply in order, as if flushed one at a time.
 */
import type { ActorHandle } from '../actors/runtime/handle';
import { invalidateRuns } from './cached-read';
import type { ClusterSlab } from '../actors/runtime/slab';
import { CLUSTER_SIZE, nowNs, type Inode } from '../fs/types';
import type { Caller, PriorityClass } from '../protocol/envelope';
import { isImapError } from '../protocol/errors';
import type { JournalOps } from '../protocol/journal';
import type { SchedulerOps } from '../protocol/scheduler';
import type { WritePlan } from '../fs/data-path';
import { MAX_IO_BYTES } from '../fs/plan-executor';

interface Buffered {
  readonly ino: number;
  readonly offset: number;
  length: number;
  readonly slot: number;
  mtimeNs: bigint;
  lastWriteMs: number;
  caller: Caller;
  /** Pieces of this buffer not yet settled (set when it is detached). */
  pieces: number;
  /** A piece of it failed for good (the error is kept for the file's next flush). */
  failed: boolean;
}

/** A piece of a buffer on its way to the map. */
interface Piece {
  readonly buf: Buffered;
  /** Bytes [from, from + length) of the buffer. */
  readonly from: number;
  readonly length: number;
  readonly priority: PriorityClass;
  /** File clusters [c0, c1) it writes. */
  readonly c0: number;
  readonly c1: number;
  readonly pipe: Pipeline;
  /** Settles when the piece before it in the pipeline is committed or has failed. */
  readonly afterCommitted: Promise<void>;
  /** Lets the next piece prepare. */
  readonly prepared: () => void;
}

/** True when a piece in flight writes any of file clusters [c0, c1). */
function sharesCluster(inflight: ReadonlySet<Piece>, c0: number, c1: number): boolean {
  for (const p of inflight) if (p.c0 < c1 && c0 < p.c1) return true;
  return false;
}

/** One file's flush pipeline. */
interface Pipeline {
  /** Settles when the last enqueued piece has its plan (or has failed). */
  prepared: Promise<void>;
  /** Settles when the last enqueued piece is committed or has failed; every earlier one has too. */
  committed: Promise<void>;
  /** Pieces enqueued and not yet settled. */
  inflight: Set<Piece>;
  /** Where the last prepared piece ends: the next piece is allocated after it (no fragmentation). */
  tail?: { fileCluster: number; mapCluster: number };
}

export interface WriteBehindDeps {
  journal: ActorHandle<JournalOps>;
  scheduler: ActorHandle<SchedulerOps>;
  slab: ClusterSlab;
  onCommitted: (inode: Inode) => void;
  onError: (err: unknown, what: string) => void;
  /**
   * Called when the journal answers ENOSPC: makes freed clusters allocatable again (a durable point
   * releases the clusters of unlinks and overwrites committed before it) and resolves to how many
   * were released. A write is retried once when this released anything.
   */
  reclaim?: () => Promise<number>;
}

const SLOT_WAIT_MS = 60_000;
/** Deliveries of one buffer when an actor restarts under it. */
const FLUSH_ATTEMPTS = 3;

export class WriteBehind {
  private readonly open = new Map<number, Buffered>();
  private readonly pipes = new Map<number, Pipeline>();
  /** Buffers of a file not yet committed, and the furthest byte they reach. */
  private readonly unflushed = new Map<number, { count: number; end: number }>();
  private readonly errors = new Map<number, unknown>();
  /** Serializes the buffer bookkeeping of one file across its concurrent writes. */
  private readonly locks = new Map<number, Promise<void>>();
  dirtyBytes = 0;
  committedBytes = 0;
  flushes = 0;
  /** Pieces whose map write started while an earlier piece of the same file was still in flight. */
  overlapped = 0;
  /** Pieces that shared a cluster with one in flight, so waited for its commit before preparing. */
  serialized = 0;

  constructor(private readonly deps: WriteBehindDeps) {}

  /** The size a file has once its buffered writes land (0 when nothing is buffered). */
  pendingEnd(ino: number): number {
    return this.unflushed.get(ino)?.end ?? 0;
  }

  async write(ino: number, data: Buffer, offset: number, caller: Caller): Promise<void> {
    await this.withLock(ino, async () => {
      // A background flush of this file failed (ENOSPC, EIO): the writer hears it now, instead of
      // streaming on into buffers that cannot land either (a `dd` onto a full map must stop).
      const failed = this.errors.get(ino);
      if (failed !== undefined) {
        this.errors.delete(ino);
        throw failed;
      }
      const slotSize = this.deps.slab.slotSize;
      let buf = this.open.get(ino);
      if (buf && (offset !== buf.offset + buf.length || buf.length + data.length > slotSize)) {
        this.detach(buf, 'interactive');
        buf = undefined;
      }
      if (!buf) {
        const slot = await this.deps.slab.alloc(SLOT_WAIT_MS);
        buf = { ino, offset, length: 0, slot, mtimeNs: 0n, lastWriteMs: 0, caller, pieces: 0, failed: false };
        this.open.set(ino, buf);
        const u = this.unflushed.get(ino) ?? { count: 0, end: 0 };
        u.count++;
        this.unflushed.set(ino, u);
      }
      // The FUSE buffer is released once we reply: copy now.
      this.deps.slab.bytes(buf.slot).set(data, buf.length);
      buf.length += data.length;
      buf.mtimeNs = nowNs();
      buf.lastWriteMs = Date.now();
      this.dirtyBytes += data.length;
      const u = this.unflushed.get(ino)!;
      u.end = Math.max(u.end, offset + data.length);
      if (buf.length === slotSize) this.detach(buf, 'interactive');
    });
  }

  /** Every buffered write of `ino` is committed (not yet durable: that is fsync's barrier). */
  async flushInode(ino: number): Promise<void> {
    await this.withLock(ino, async () => {
      const buf = this.open.get(ino);
      if (buf) this.detach(buf, 'interactive');
    });
    await this.pipes.get(ino)?.committed;
    const err = this.errors.get(ino);
    if (err !== undefined) {
      this.errors.delete(ino);
      throw err;
    }
  }

  /** Every file's buffers committed; errors are reported through onError, not thrown. */
  async flushAll(): Promise<void> {
    const inos = new Set([...this.open.keys(), ...this.pipes.keys()]);
    await Promise.all(
      [...inos].map((ino) =>
        this.flushInode(ino).catch((err: unknown) => this.deps.onError(err, `flush of inode ${ino}`)),
      ),
    );
  }

  /** Starts flushing buffers nobody wrote to for `idleMs`, at background priority. */
  flushIdle(idleMs: number): void {
    const now = Date.now();
    for (const buf of [...this.open.values()]) {
      if (now - buf.lastWriteMs >= idleMs) {
        void this.withLock(buf.ino, async () => {
          if (this.open.get(buf.ino) === buf) this.detach(buf, 'background');
        });
      }
    }
  }

  private detach(buf: Buffered, priority: PriorityClass): void {
    this.open.delete(buf.ino);
    buf.pieces = Math.ceil(buf.length / MAX_IO_BYTES);
    for (let from = 0; from < buf.length; from += MAX_IO_BYTES) {
      this.enqueue(buf, from, Math.min(MAX_IO_BYTES, buf.length - from), priority);
    }
  }

  /**
   * Puts one piece (at most MAX_IO_BYTES, an executor's largest plan) of a buffer into its file's
   * pipeline. Prepares run in submission order and commits run in submission order, but the map
   * write of a piece overlaps the commit of the one before and the prepare of the one after. A piece
   * that shares a cluster with one still in flight merges that cluster's bytes, so it is prepared
   * only once the earlier piece is live (then it reads the merged cluster, as a serial writer would).
   */
  private enqueue(buf: Buffered, from: number, length: number, priority: PriorityClass): void {
    const ino = buf.ino;
    const pipe = this.pipeOf(ino);
    const offset = buf.offset + from;
    const c0 = Math.floor(offset / CLUSTER_SIZE);
    const c1 = Math.ceil((offset + length) / CLUSTER_SIZE);
    const shares = sharesCluster(pipe.inflight, c0, c1);
    if (shares) this.serialized++;
    const afterPrepared = pipe.prepared;
    const afterCommitted = pipe.committed;
    let prepared!: () => void;
    pipe.prepared = new Promise<void>((resolve) => (prepared = resolve));
    const piece: Piece = {
      buf,
      from,
      length,
      priority,
      c0,
      c1,
      pipe,
      afterCommitted,
      prepared,
    };
    pipe.inflight.add(piece);
    const run = async (): Promise<void> => {
      try {
        await (shares ? afterCommitted : afterPrepared);
        await this.flushPiece(piece);
        this.committedBytes += length;
      } catch (err) {
        buf.failed = true;
        if (!this.errors.has(ino)) this.errors.set(ino, err);
        this.deps.onError(err, `write-behind of ${length} bytes at ${offset} of inode ${ino}`);
      } finally {
        prepared();
        pipe.inflight.delete(piece);
        // Settle in order even after a failure: flushInode awaits only the last piece.
        await afterCommitted;
        if (--buf.pieces === 0) this.release(buf);
      }
    };
    const done = run();
    pipe.committed = done;
    void done.then(() => {
      if (this.pipes.get(ino) === pipe && pipe.committed === done) this.pipes.delete(ino);
    });
  }

  private pipeOf(ino: number): Pipeline {
    let pipe = this.pipes.get(ino);
    if (!pipe) {
      pipe = { prepared: Promise.resolve(), committed: Promise.resolve(), inflight: new Set() };
      this.pipes.set(ino, pipe);
    }
    return pipe;
  }

  private release(buf: Buffered): void {
    if (!buf.failed) this.flushes++;
    this.deps.slab.free(buf.slot);
    this.dirtyBytes -= buf.length;
    const u = this.unflushed.get(buf.ino);
    if (u && --u.count === 0) this.unflushed.delete(buf.ino);
  }

  private async flushPiece(piece: Piece): Promise<void> {
    const { journal, scheduler } = this.deps;
    const restarts = () => journal.stats().restarts + scheduler.stats().restarts;
    for (let attempt = 1; ; attempt++) {
      const before = restarts();
      try {
        await this.flushPieceOnce(piece);
        return;
      } catch (err) {
        // A restart keeps the plans' reservations and redelivers what was in flight, so this is a
        // request that failed on every worker it reached: the slot still holds the data, redo it all,
        // serially this time (after the pieces before it are committed).
        if (attempt >= FLUSH_ATTEMPTS || restarts() === before) throw err;
        await piece.afterCommitted;
      }
    }
  }

  private async flushPieceOnce(piece: Piece): Promise<void> {
    const { journal, scheduler, slab } = this.deps;
    const { buf, from, length, priority, pipe } = piece;
    const opts = { priority, caller: buf.caller, idempotent: true } as const;
    const offset = buf.offset + from;
    let plan: WritePlan | undefined;
    try {
      const near = pipe.tail && pipe.tail.fileCluster === piece.c0 ? pipe.tail.mapCluster : undefined;
      const prepare = () =>
        journal.request(
          'prepareWrite',
          { ino: buf.ino, offset, length, ...(near !== undefined ? { near } : {}) },
          opts,
        );
      try {
        plan = await prepare();
      } catch (err) {
        // Space freed by a recent rm is pending until the next durable point: reach one and retry.
        if (!(isImapError(err) && err.code === 'IMAP_E_NO_SPACE' && this.deps.reclaim)) throw err;
        if ((await this.deps.reclaim()) === 0) throw err;
        plan = await prepare();
      }
      const last = plan.runs[plan.runs.length - 1];
      if (last)
        pipe.tail = {
          fileCluster: plan.fileCluster + plan.clusterCount,
          mapCluster: last.start + last.length,
        };
      piece.prepared();
      // The set keeps enqueue order: an earlier piece first means one is not committed yet.
      if (pipe.inflight.values().next().value !== piece) this.overlapped++;
      const crcs = await scheduler.request(
        'write',
        { plan },
        { ...opts, data: slab.ref(buf.slot, from, length) },
      );
      // The new run may hold a freed cluster's old bytes in the cache: drop them before it goes live.
      await invalidateRuns(scheduler, plan.runs);
      await piece.afterCommitted;
      const inode = await journal.request('commitWrite', { plan, crcs, mtimeNs: buf.mtimeNs }, opts);
      this.deps.onCommitted(inode);
    } catch (err) {
      // Its map write has settled: the clusters can go back to free space (a journal restart since
      // the prepare kept them reserved; a commit that did get in makes this a no-op).
      if (plan) {
        await journal
          .request('abortWrite', { plan }, opts)
          .catch((abortErr: unknown) =>
            this.deps.onError(abortErr, `abort of a failed write to inode ${buf.ino}`),
          );
      }
      throw err;
    }
  }

  private async withLock(ino: number, body: () => Promise<void>): Promise<void> {
    const prev = this.locks.get(ino) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = prev.then(() => mine);
    this.locks.set(ino, chained);
    await prev;
    try {
      await body();
    } finally {
      release();
      if (this.locks.get(ino) === chained) this.locks.delete(ino);
    }
  }
}
