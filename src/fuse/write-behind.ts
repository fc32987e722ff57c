/**
 * Write-behind: FUSE writes land in slab slots (one open buffer per file, growing while writes are
 * contiguous) and reach the map in the background, a buffer at a time, through the copy-on-write
 * data path: journal.prepareWrite → scheduler.write → journal.commitWrite.
 *
 *   write ─▶ open buffer ─(full, non-contiguous write, flush, fsync, read, idle)─▶ detached
 *        detached ─(per-file chain, in submission order)─▶ committed ─▶ slot freed
 *
 * Memory is bounded by the slab: a writer waits for a free slot instead of memory growing
 * (io.max_dirty_bytes sets the slot count). Errors of a background flush are kept per file and
 * reported by the next flush/fsync/close of that file, like the kernel's own writeback errors; they
 * are also logged and counted at once. The next write to that file fails with it too.
 *
 * Ownership: main thread. Each file's buffers are flushed one at a time (the data path requires
 * prepare → commit to be serial per inode), so writes to the same clusters apply in order.
 */
import type { ActorHandle } from '../actors/runtime/handle';
import { invalidateRuns } from './cached-read';
import type { ClusterSlab } from '../actors/runtime/slab';
import { nowNs, type Inode } from '../fs/types';
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
  private readonly chains = new Map<number, Promise<void>>();
  /** Buffers of a file not yet committed, and the furthest byte they reach. */
  private readonly unflushed = new Map<number, { count: number; end: number }>();
  private readonly errors = new Map<number, unknown>();
  /** Serializes the buffer bookkeeping of one file across its concurrent writes. */
  private readonly locks = new Map<number, Promise<void>>();
  dirtyBytes = 0;
  committedBytes = 0;
  flushes = 0;

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
        buf = { ino, offset, length: 0, slot, mtimeNs: 0n, lastWriteMs: 0, caller };
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
    await this.chains.get(ino);
    const err = this.errors.get(ino);
    if (err !== undefined) {
      this.errors.delete(ino);
      throw err;
    }
  }

  /** Every file's buffers committed; errors are reported through onError, not thrown. */
  async flushAll(): Promise<void> {
    const inos = new Set([...this.open.keys(), ...this.chains.keys()]);
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
    const prev = this.chains.get(buf.ino) ?? Promise.resolve();
    const next = prev.then(() => this.flushBuffer(buf, priority));
    this.chains.set(buf.ino, next);
    void next.then(() => {
      if (this.chains.get(buf.ino) === next) this.chains.delete(buf.ino);
    });
  }

  private async flushBuffer(buf: Buffered, priority: PriorityClass): Promise<void> {
    const { journal, scheduler, slab } = this.deps;
    const restarts = () => journal.stats().restarts + scheduler.stats().restarts;
    try {
      for (let attempt = 1; ; attempt++) {
        const before = restarts();
        try {
          await this.flushOnce(buf, priority);
          return;
        } catch (err) {
          // A journal restart forgets the reservations of plans prepared before it (allocator
          // recovery), so a commit after it is refused: the slot still holds the data, redo it all.
          if (attempt >= FLUSH_ATTEMPTS || restarts() === before) {
            if (!this.errors.has(buf.ino)) this.errors.set(buf.ino, err);
            this.deps.onError(
              err,
              `write-behind of ${buf.length} bytes at ${buf.offset} of inode ${buf.ino}`,
            );
            return;
          }
        }
      }
    } finally {
      slab.free(buf.slot);
      this.dirtyBytes -= buf.length;
      const u = this.unflushed.get(buf.ino);
      if (u && --u.count === 0) this.unflushed.delete(buf.ino);
    }
  }

  /**
   * One buffer through the data path, in pieces of at most MAX_IO_BYTES (an executor's largest plan):
   * a buffer of io.chunk_bytes larger than that lands as consecutive runs, each its own transaction.
   */
  private async flushOnce(buf: Buffered, priority: PriorityClass): Promise<void> {
    for (let done = 0; done < buf.length; done += MAX_IO_BYTES) {
      await this.flushPiece(buf, done, Math.min(MAX_IO_BYTES, buf.length - done), priority);
    }
    this.flushes++;
  }

  private async flushPiece(
    buf: Buffered,
    from: number,
    length: number,
    priority: PriorityClass,
  ): Promise<void> {
    const { journal, scheduler, slab } = this.deps;
    const opts = { priority, caller: buf.caller, idempotent: true } as const;
    let plan: WritePlan | undefined;
    let journalGen = journal.stats().restarts;
    try {
      const prepare = () =>
        journal.request('prepareWrite', { ino: buf.ino, offset: buf.offset + from, length }, opts);
      try {
        plan = await prepare();
      } catch (err) {
        // Space freed by a recent rm is pending until the next durable point: reach one and retry.
        if (!(isImapError(err) && err.code === 'IMAP_E_NO_SPACE' && this.deps.reclaim)) throw err;
        if ((await this.deps.reclaim()) === 0) throw err;
        plan = await prepare();
      }
      journalGen = journal.stats().restarts;
      const crcs = await scheduler.request(
        'write',
        { plan },
        { ...opts, data: slab.ref(buf.slot, from, length) },
      );
      // The new run may hold a freed cluster's old bytes in the cache: drop them before it goes live.
      await invalidateRuns(scheduler, plan.runs);
      const inode = await journal.request('commitWrite', { plan, crcs, mtimeNs: buf.mtimeNs }, opts);
      this.committedBytes += length;
      this.deps.onCommitted(inode);
    } catch (err) {
      // A journal restarted since the plan was prepared already returned its clusters (recovery).
      if (plan && journal.stats().restarts === journalGen) {
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
