/**
 * Sequential read-ahead windows (main thread): the bytes just ahead of a sequential reader, kept in
 * read slots so that its next FUSE reads are answered from memory after one journal round trip.
 *
 *   window: journal.planRead [from, from + slot) ─▶ cache.read (hits) ─▶ scheduler.read of the rest
 *           (CRCs verified) into a slot ─▶ cache.insert of what the scheduler read.
 *   read:   journal.planRead of the request (as always) ─▶ the windows covering it, if every cluster
 *           they hold is the one the plan names (same map cluster, same CRC) ─▶ reply from the slot.
 *
 * Why windows as well as the cache actor: a hit in the cache still costs a cache round trip and a
 * copy in the cache thread per request; a window is read once, ahead of the reader, and serves
 * every request inside it from the slot. The windows still use the cache (`deps.fill`): a window is
 * filled from the cache where it holds the clusters, and what it read from the map is inserted as
 * prefetched data (L1 only unless cache.l2_streamed), so a file read again is served from memory.
 *
 * Validity. A window is a copy of map clusters. The plan check catches every change of what a file
 * offset maps to (a write, truncate or fallocate since the window was planned). A map cluster only
 * gets new content after it was freed and allocated again, and the writer then calls `invalidate`
 * (src/fuse/cached-read.ts `invalidateRuns`) before it commits: that kills every window holding one
 * of those clusters, whether it is still loading or ready. Same rule as the cache actor's entries.
 *
 * Bounds. At most `maxWindows` slots per stream and `maxTotal` over all streams, and never one of
 * the last `reserve` free read slots, so foreground reads never wait for read-ahead. How far ahead a
 * stream reads adapts to its measured rate: `leadS` seconds of it, between 2 windows and maxWindows.
 */
import type { ActorHandle } from '../actors/runtime/handle';
import type { ClusterSlab } from '../actors/runtime/slab';
import type { ReadPlan } from '../fs/data-path';
import type { ClusterRange } from '../protocol/cache';
import type { JournalOps } from '../protocol/journal';
import type { SchedulerOps } from '../protocol/scheduler';

export interface ReadAheadDeps {
  journal: ActorHandle<JournalOps>;
  scheduler: ActorHandle<SchedulerOps>;
  readSlab: ClusterSlab;
  onBackgroundError?: (err: unknown, what: string) => void;
  /**
   * Fills a window's slot with its plan's bytes (the cache's where it holds them, the scheduler's
   * for the rest, which it then inserts). Resolves once the bytes are in the slot; `settled`
   * settles (never rejects) when the slot may be reused, the insert having copied it. Without it
   * windows read from the scheduler only.
   */
  fill?: (plan: ReadPlan, slot: number) => Promise<{ settled: Promise<void> }>;
}

export interface ReadAheadLimits {
  /** Windows one stream may hold (ready, loading and not yet consumed). */
  maxWindows: number;
  /** Windows all streams together may hold. */
  maxTotal: number;
  /** Free read slots read-ahead never takes. */
  reserve: number;
  /** Window reads in flight at the scheduler, all streams together. */
  maxLoading: number;
  /** Seconds of the reader's rate to hold ahead of it. */
  leadS: number;
  /**
   * How far ahead of the reader the kernel is asked to bring the map's pages into its page cache
   * (scheduler `advise`; 0: never). A far region is a big square of tiles whose rows are long spans,
   * so the device reads it in far fewer requests than the windows' own 1 MiB plans would make.
   */
  adviseBytes: number;
}

export interface ReadAheadCounters {
  /** Windows started. */
  windows: number;
  /** Foreground reads answered from windows, and those of them that waited for a window's read. */
  hits: number;
  waited: number;
  /** Windows read, and their planRead + scheduler read time in total (ms): the mean is what a reader outrunning read-ahead waits. */
  loaded: number;
  loadMs: number;
  /** Windows dropped before the reader got to them: invalidated, remapped or failed. */
  dropped: number;
  /** Window reads that failed (the read then takes the ordinary path). */
  failed: number;
  /** Windows not started because no read slot could be spared. */
  skippedNoSlot: number;
  /** Advice requests sent, and the bytes of file they covered. */
  advised: number;
  advisedBytes: number;
  /** Bytes the last decision held ahead of the reader, and the rate it was sized for (bytes/s). */
  lastAheadBytes: number;
  lastRateBps: number;
}

interface Window {
  readonly ino: number;
  /** File offset of the slot's byte 0 (a multiple of the slot size). */
  readonly from: number;
  readonly slot: number;
  state: 'loading' | 'ready' | 'dead';
  /** The slot is in use by the window's own planRead/scheduler read: it is freed only after. */
  reading: boolean;
  /** What the window was read with (null until planned). Readable bytes: plan.length from `from`. */
  plan: ReadPlan | null;
  done: Promise<void>;
  /** Settles when nothing but the window uses its slot any more (an insert from it has finished). */
  settled: Promise<void>;
}

interface Stream {
  /** Windows by ascending `from`. */
  windows: Window[];
  /** End of the file seen by a window plan: no window starts at or past it. */
  eofAt: number;
  /** Rate measurement: reader position and time at the last mark. */
  markEnd: number;
  markMs: number;
  rateBps: number;
  /** Windows to hold ahead (ramps ×2 from 2 up to maxWindows while the rate allows). */
  ahead: number;
  /** performance.now() of the last advance: the stream idle longest gives up its windows first. */
  usedMs: number;
  /** File bytes [.., advisedTo) were advised (or are being); one advice in flight at a time. */
  advisedTo: number;
  advising: boolean;
  /**
   * End of the furthest read the kernel has sent, answered or not. Its own read-ahead keeps
   * several reads in flight (fio's POSIX_FADV_SEQUENTIAL doubles its window), and a window for a
   * range already requested comes too late to serve it: windows start past this point.
   */
  requestedEnd: number;
}

/** Streams remembered before those without windows are forgotten (maxTotal bounds the rest). */
const MAX_STREAMS = 1024;
/**
 * The plan's map clusters as maximal runs. Extents end every 16 MiB or so even where the map
 * clusters go on, and the scheduler merges the row pieces of one advice only: one advice per run
 * lets a long run's rows become long reads (16–32 KiB instead of 8 KiB per request).
 */
function mapRuns(segments: ReadPlan['segments']): { first: number; count: number }[] {
  const runs: { first: number; count: number }[] = [];
  for (const seg of segments) {
    if (seg.mapCluster === null) continue;
    const last = runs[runs.length - 1];
    if (last && last.first + last.count === seg.mapCluster) last.count += seg.count;
    else runs.push({ first: seg.mapCluster, count: seg.count });
  }
  return runs;
}

/** Furthest past the stream a read may start and still count as the kernel's read-ahead. */
const KERNEL_AHEAD_MAX = 16 << 20;
/** Longest a foreground read waits for a loading window that covers it before reading itself. */
const JOIN_MS = 50;

export class ReadAhead {
  private readonly streams = new Map<number, Stream>();
  private total = 0;
  private loading = 0;
  readonly counters: ReadAheadCounters = {
    windows: 0,
    hits: 0,
    waited: 0,
    loaded: 0,
    loadMs: 0,
    dropped: 0,
    failed: 0,
    skippedNoSlot: 0,
    advised: 0,
    advisedBytes: 0,
    lastAheadBytes: 0,
    lastRateBps: 0,
  };

  constructor(
    private readonly deps: ReadAheadDeps,
    private readonly limits: ReadAheadLimits,
  ) {}

  private get slotSize(): number {
    return this.deps.readSlab.slotSize;
  }

  /**
   * Answers `plan` (a fresh foreground plan) from windows when they hold exactly its clusters:
   * calls `sink(bytes, offset, length)` and returns true. Returns false, having sent nothing, when
   * they do not (the caller reads the ordinary way).
   */
  async serve(
    plan: ReadPlan,
    sink: (data: Uint8Array, offset: number, length: number) => void,
  ): Promise<boolean> {
    const s = this.streams.get(plan.ino);
    if (!s || plan.length === 0) return false;
    const end = plan.offset + plan.length;
    let covering = this.covering(s, plan.offset, end);
    if (!covering) return false;
    const loading = covering.filter((w) => w.state === 'loading');
    if (loading.length > 0) {
      this.counters.waited++;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(loading.map((w) => w.done)),
        new Promise((r) => (timer = setTimeout(r, JOIN_MS))),
      ]);
      clearTimeout(timer);
      // Windows may have been retired or killed meanwhile: look again.
      covering = this.covering(s, plan.offset, end);
      if (!covering || covering.some((w) => w.state !== 'ready')) return false;
    }
    for (const w of covering) {
      if (!holdsSame(w, plan)) {
        this.kill(s, w);
        return false;
      }
    }
    // Synchronous from here on: no window can be retired while its bytes are copied out.
    const slab = this.deps.readSlab;
    if (covering.length === 1) {
      const w = covering[0]!;
      sink(slab.bytes(w.slot), plan.offset - w.from, plan.length);
    } else {
      const out = Buffer.allocUnsafe(plan.length);
      for (const w of covering) {
        const a = Math.max(plan.offset, w.from);
        const b = Math.min(end, w.from + this.slotSize);
        out.set(slab.bytes(w.slot).subarray(a - w.from, b - w.from), a - plan.offset);
      }
      sink(out, 0, plan.length);
    }
    this.counters.hits++;
    return true;
  }

  /** The windows (loading or ready) that together cover [from, to), or null if some byte is not. */
  private covering(s: Stream, from: number, to: number): Window[] | null {
    const out: Window[] = [];
    let at = from;
    for (const w of s.windows) {
      if (w.state === 'dead') continue;
      const wEnd = w.plan ? w.from + w.plan.length : w.from + this.slotSize;
      if (wEnd <= at || w.from > at) continue;
      out.push(w);
      at = wEnd;
      if (at >= to) return out;
    }
    return null;
  }

  /**
   * The kernel sent a read of [offset, end) of `ino`, before it is planned: a stream being read
   * ahead learns how far the kernel's own read-ahead has got (windows start beyond it).
   */
  requested(ino: number, end: number): void {
    const s = this.streams.get(ino);
    // A read far past the stream is another reader's or a seek, not the kernel's read-ahead.
    if (s && end > s.requestedEnd && end <= s.requestedEnd + KERNEL_AHEAD_MAX) s.requestedEnd = end;
  }

  /**
   * A sequential reader of `ino` has read up to `readerEnd`: retires windows behind `readerFrom`
   * and starts the ones that keep `ahead` windows in front of it.
   */
  advance(ino: number, readerFrom: number, readerEnd: number, fileSize?: number): void {
    let s = this.streams.get(ino);
    if (!s) {
      if (this.streams.size >= MAX_STREAMS) this.dropIdleStreams();
      s = {
        windows: [],
        eofAt: Infinity,
        markEnd: readerEnd,
        markMs: performance.now(),
        rateBps: 0,
        ahead: 2,
        usedMs: 0,
        advisedTo: 0,
        advising: false,
        requestedEnd: readerEnd,
      };
      this.streams.set(ino, s);
    }
    if (fileSize !== undefined) s.eofAt = fileSize;
    s.usedMs = performance.now();
    // Behind the reader: the kernel's read-ahead may still ask for a little before its last
    // request, so a window stays until the reader is a whole slot past its end.
    const keepFrom = readerFrom - this.slotSize;
    while (s.windows.length > 0 && s.windows[0]!.from + this.slotSize <= keepFrom) {
      this.retire(s, s.windows.shift()!);
    }
    this.measure(s, readerEnd);
    const size = this.slotSize;
    const firstFrom = Math.floor(Math.max(readerEnd, s.requestedEnd) / size) * size;
    const limitFrom = Math.min(s.eofAt, firstFrom + s.ahead * size);
    for (let from = firstFrom; from < limitFrom; from += size) {
      if (s.windows.some((w) => w.from === from && w.state !== 'dead')) continue;
      if (!this.start(s, ino, from)) break;
    }
    this.adviseAhead(s, ino, limitFrom, readerEnd);
  }

  /**
   * Keeps the region past the windows, up to adviseBytes ahead of the reader, advised: when less
   * than half of it is, one planRead of the rest and one `advise` per run of map clusters.
   */
  private adviseAhead(s: Stream, ino: number, windowsEnd: number, readerEnd: number): void {
    const far = this.limits.adviseBytes;
    if (far <= 0 || s.advising) return;
    const to = Math.min(s.eofAt, readerEnd + far);
    const from = Math.max(s.advisedTo, windowsEnd);
    if (to - from < far / 2 || from >= to) return;
    s.advising = true;
    s.advisedTo = to;
    this.counters.advised++;
    this.counters.advisedBytes += to - from;
    const bg = { priority: 'background', idempotent: true } as const;
    const advise = async () => {
      const plan = await this.deps.journal.request('planRead', { ino, offset: from, length: to - from }, bg);
      for (const run of mapRuns(plan.segments)) {
        await this.deps.scheduler.request('advise', run, bg);
      }
    };
    advise()
      .catch((err: unknown) => {
        // Advice lost costs speed only; overload under foreground pressure is expected.
        if ((err as { code?: string }).code !== 'IMAP_E_OVERLOADED') {
          this.deps.onBackgroundError?.(err, 'read-ahead advice');
        }
      })
      .finally(() => {
        s.advising = false;
      });
  }

  /** The rate since the last mark (smoothed), and the lead it asks for. */
  private measure(s: Stream, readerEnd: number): void {
    const now = performance.now();
    const ms = now - s.markMs;
    if (ms < 20 || readerEnd <= s.markEnd) return;
    const rate = ((readerEnd - s.markEnd) * 1000) / ms;
    s.rateBps = s.rateBps > 0 ? (s.rateBps + rate) / 2 : rate;
    s.markEnd = readerEnd;
    s.markMs = now;
    const want = Math.ceil((s.rateBps * this.limits.leadS) / this.slotSize);
    s.ahead = Math.max(2, Math.min(this.limits.maxWindows, want, s.ahead * 2));
    this.counters.lastAheadBytes = s.ahead * this.slotSize;
    this.counters.lastRateBps = Math.round(s.rateBps);
  }

  private start(s: Stream, ino: number, from: number): boolean {
    const { readSlab: slab } = this.deps;
    if (this.total >= this.limits.maxTotal) this.evictIdlest(s);
    if (
      s.windows.length >= this.limits.maxWindows ||
      this.total >= this.limits.maxTotal ||
      this.loading >= this.limits.maxLoading
    ) {
      return false;
    }
    if (slab.freeSlots <= this.limits.reserve) {
      this.counters.skippedNoSlot++;
      return false;
    }
    const slot = slab.tryAlloc();
    if (slot < 0) {
      this.counters.skippedNoSlot++;
      return false;
    }
    const w: Window = {
      ino,
      from,
      slot,
      state: 'loading',
      reading: true,
      plan: null,
      done: Promise.resolve(),
      settled: Promise.resolve(),
    };
    this.total++;
    this.loading++;
    this.counters.windows++;
    const at = s.windows.findIndex((x) => x.from > from);
    if (at < 0) s.windows.push(w);
    else s.windows.splice(at, 0, w);
    w.done = this.load(s, w).finally(() => {
      this.loading--;
    });
    return true;
  }

  private async load(s: Stream, w: Window): Promise<void> {
    const bg = { priority: 'background', idempotent: true } as const;
    const t0 = performance.now();
    let ok = false;
    try {
      const plan = await this.deps.journal.request(
        'planRead',
        { ino: w.ino, offset: w.from, length: this.slotSize },
        bg,
      );
      // Recorded before any await, so an invalidation of these clusters from now on finds it.
      w.plan = plan;
      if (plan.size !== undefined) s.eofAt = plan.size;
      if (plan.length > 0 && w.state === 'loading') {
        if (this.deps.fill) {
          ({ settled: w.settled } = await this.deps.fill(plan, w.slot));
        } else {
          await this.deps.scheduler.request(
            'read',
            { plan },
            { ...bg, data: this.deps.readSlab.ref(w.slot, 0, plan.length) },
          );
        }
        ok = true;
        this.counters.loaded++;
        this.counters.loadMs += performance.now() - t0;
      }
    } catch (err) {
      this.counters.failed++;
      // Overload is expected under foreground pressure; anything else is worth a log line.
      if ((err as { code?: string }).code !== 'IMAP_E_OVERLOADED') {
        this.deps.onBackgroundError?.(err, 'read-ahead');
      }
    } finally {
      w.reading = false;
      if (w.state === 'dead') this.release(w);
      else if (ok) w.state = 'ready';
      else this.kill(s, w);
    }
  }

  /** Drops every window holding one of `ranges` (map clusters about to get new content). */
  invalidate(ranges: readonly ClusterRange[]): void {
    for (const s of this.streams.values()) {
      for (const w of [...s.windows]) {
        if (w.state !== 'dead' && overlaps(w, ranges)) this.kill(s, w);
      }
    }
  }

  /** Forgets `ino`'s stream (its file was closed by every reader, or removed). */
  forget(ino: number): void {
    const s = this.streams.get(ino);
    if (!s) return;
    for (const w of [...s.windows]) this.retire(s, w);
    this.streams.delete(ino);
  }

  /** Forgets streams holding no window (their detector state is cheap to rebuild). */
  private dropIdleStreams(): void {
    for (const [ino, s] of this.streams) {
      if (s.windows.length === 0 && !s.advising) this.streams.delete(ino);
    }
  }

  /** Frees the windows of the stream (other than `keep`) that advanced least recently. */
  private evictIdlest(keep: Stream): void {
    let idlest: number | null = null;
    let oldest = Infinity;
    for (const [ino, s] of this.streams) {
      if (s !== keep && s.windows.length > 0 && s.usedMs < oldest) {
        oldest = s.usedMs;
        idlest = ino;
      }
    }
    if (idlest !== null) this.forget(idlest);
  }

  /** Drops everything (unmount). */
  clear(): void {
    for (const ino of [...this.streams.keys()]) this.forget(ino);
  }

  /** Takes `w` out of its stream; its slot is freed now, or when its read finishes. */
  private retire(s: Stream, w: Window): void {
    const i = s.windows.indexOf(w);
    if (i >= 0) s.windows.splice(i, 1);
    if (w.state === 'dead') return;
    w.state = 'dead';
    if (!w.reading) this.release(w);
  }

  /** A window whose bytes can no longer be trusted, or were never read. */
  private kill(s: Stream, w: Window): void {
    if (w.state !== 'dead') this.counters.dropped++;
    this.retire(s, w);
  }

  private release(w: Window): void {
    this.total--;
    const slab = this.deps.readSlab;
    void w.settled.then(() => slab.free(w.slot));
  }
}

/** Every cluster of `plan` that lies in `w` maps to the same map cluster with the same CRC. */
function holdsSame(w: Window, plan: ReadPlan): boolean {
  const wp = w.plan;
  if (!wp) return false;
  const first = Math.max(plan.fileCluster, wp.fileCluster);
  const last = Math.min(plan.fileCluster + plan.clusterCount, wp.fileCluster + wp.clusterCount);
  for (let fc = first; fc < last; fc++) {
    const a = clusterAt(plan, fc);
    const b = clusterAt(wp, fc);
    if (!a || !b || a.map !== b.map || a.crc !== b.crc) return false;
  }
  return true;
}

function clusterAt(plan: ReadPlan, fc: number): { map: number | null; crc: number } | null {
  for (const s of plan.segments) {
    if (fc < s.fileCluster || fc >= s.fileCluster + s.count) continue;
    const k = fc - s.fileCluster;
    return {
      map: s.mapCluster === null ? null : s.mapCluster + k,
      // crcs crossed a thread as a plain Uint8Array (structured clone drops Buffer).
      crc: s.crcs ? u32le(s.crcs, k * 4) : -1,
    };
  }
  return null;
}

function overlaps(w: Window, ranges: readonly ClusterRange[]): boolean {
  if (!w.plan) return false;
  for (const s of w.plan.segments) {
    if (s.mapCluster === null) continue;
    for (const r of ranges) {
      if (s.mapCluster < r.first + r.count && r.first < s.mapCluster + s.count) return true;
    }
  }
  return false;
}

function u32le(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}
