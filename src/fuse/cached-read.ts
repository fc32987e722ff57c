/**
 * The read path through the cache actor, prefetch and warming (main thread).
 *
 *   read:  journal.planRead ─▶ cache.read (hits copied into the reader's slot by the cache thread;
 *          answers the span [missFrom, missTo) left to fetch) ─▶ if any: scheduler.read of that span
 *          (CRCs verified) into the same slot ─▶ reply ─▶ cache.insert of the fetched clusters
 *          (after the reply, off the op's latency) ─▶ slot freed.
 *   Hops on a full hit: journal + cache. On a miss: + scheduler (+ the insert, after the reply).
 *
 * The slot holds whole clusters (cluster i of the plan at byte i × 4096) and the reply is the window
 * [offset − fileCluster × 4096, + length) of it. A plan whose whole clusters exceed one slot (an
 * unaligned 1 MiB read) bypasses the cache. When the cache actor is failed, overloaded or errs, the
 * read goes straight to the scheduler: the cache can slow a read, never fail it.
 *
 * Invalidation (docs/cache.md): `invalidateRuns(scheduler, runs)` must run after the scheduler wrote
 * a write plan's (or truncate tail's) new runs and before the journal commits them. Why after and not
 * before: a reader holding an older plan may fetch such a cluster (freed, then reallocated) between an
 * early invalidation and the write, and insert the old bytes; the insert's token catches any insert
 * that crosses an invalidation, so the one invalidation that matters is the one after the write.
 *
 * Prefetch: per-inode sequential and strided detection (detectors in a quick-lru of STREAMS
 * inodes); reads ahead at background priority through journal → cache.probe → scheduler →
 * cache.insert, with at most MAX_PREFETCH_INFLIGHT windows in flight and never taking one of the
 * last READ_SLOT_RESERVE read slots, so a foreground read never waits for a prefetch's slot.
 *
 * Neighbour prefetch: map clusters are numbered along the Hilbert curve and small files written
 * together get neighbouring clusters, so a cold read of a small file (≤ SMALL_FILE_CLUSTERS) also
 * reads the cache.prefetch.neighbour_clusters map clusters stored after it: journal.mapSegments
 * (which files own them, and their CRCs) → cache.probe → scheduler → cache.insert, same bounds as
 * above. Issued blocks are remembered (quick-lru, NEIGHBOUR_MEMORY_MS) so a window is not issued
 * twice while its clusters are still expected to be cached.
 *
 * Ownership: main thread. A read slot belongs to the reader from alloc to free; the cache and the
 * scheduler only touch it during their request.
 */
import QuickLRU from 'quick-lru';
import type { ActorHandle } from '../actors/runtime/handle';
import type { ClusterSlab } from '../actors/runtime/slab';
import type { Config } from '../config';
import type { ReadPlan } from '../fs/data-path';
import type { Segment } from '../fs/extent-map';
import { CLUSTER_SIZE } from '../fs/types';
import type {
  CacheOps,
  CacheRun,
  CacheSegment,
  CacheToken,
  ClusterRange,
  InsertSource,
  WarmRun,
} from '../protocol/cache';
import type { Caller } from '../protocol/envelope';
import type { JournalOps } from '../protocol/journal';
import type { SchedulerOps } from '../protocol/scheduler';
import { ReadAhead, type ReadAheadCounters } from './read-ahead';

export interface CachedReadDeps {
  journal: ActorHandle<JournalOps>;
  scheduler: ActorHandle<SchedulerOps>;
  /** Without it every read goes to the scheduler. */
  cache?: ActorHandle<CacheOps>;
  readSlab: ClusterSlab;
  config: Pick<Config, 'cache' | 'io'>;
  onBackgroundError?: (err: unknown, what: string) => void;
}

/** Receives the reply: `data[offset, offset + length)`, or null for EOF. Called before the slot is freed. */
export type ReadSink = (data: Uint8Array | null, offset: number, length: number) => void;

const SLOT_WAIT_MS = 30_000;
const READ_SLOT_RESERVE = 8;
const MAX_PREFETCH_INFLIGHT = 2;
/**
 * Read-ahead window loads in flight. Four served a reader the kernel keeps two 1 MiB reads in
 * flight for (fio) 99% from windows against 45% with two, but cold throughput moved by ~5% only
 * and the daemon's peak RSS over a 1 GiB stream with 16 MiB budgets grew by 22 MiB, past the
 * bound the streaming issue sets (l1 + l2 + dirty + 64 MiB): two it is.
 */
const WINDOW_LOADS = 2;
const STREAMS = 1024;
/** First prefetch window, in clusters (grows ×2 per window up to cache.prefetch.window_clusters). */
const FIRST_WINDOW = 64;
/**
 * Seconds of the reader's measured rate a sequential window holds: a slow reader gets small windows
 * (less read that it may never use, less cache churn), a fast one the full window_clusters.
 */
const WINDOW_LEAD_S = 0.1;
/** The map's pages are advised this many read-ahead windows (io.readahead_bytes) ahead of a sequential reader. */
const ADVISE_WINDOWS = 4;
/** Reads this many times in a pattern before prefetching. */
const TRIGGER = 2;
const MAX_STRIDE_SPAN = 16 << 20;
/** A file of at most this many clusters, read cold, triggers neighbour prefetch. */
export const SMALL_FILE_CLUSTERS = 16;
/** An issued neighbour block is not issued again for this long. */
const NEIGHBOUR_MEMORY_MS = 10_000;
/** Issued neighbour blocks remembered (quick-lru keeps between this and twice as many). */
const NEIGHBOUR_BLOCKS = 4096;

/** Data clusters of some file, to fetch: a plan segment tagged with its inode. */
interface Piece extends Segment {
  ino: number;
}

/** A prefetch whose clusters a foreground read may wait for instead of fetching them itself. */
interface Inflight {
  from: number;
  to: number;
  reading: boolean;
  done: Promise<unknown>;
}

interface Stream {
  lastOffset: number;
  lastEnd: number;
  lastLength: number;
  stride: number;
  seqRun: number;
  strideRun: number;
  /** Bytes [.., frontier) were prefetched (or are being). */
  frontier: number;
  window: number;
  /** Reader's sequential rate (bytes/s, smoothed over windows); 0 until two windows were started. */
  rateBps: number;
  /** When the last window was started and how far the reader was then. */
  markMs: number;
  markEnd: number;
  busy: boolean;
  eof: boolean;
  /** The window being fetched (file bytes): a read inside it waits for it once it is being read. */
  inflight: Inflight | null;
}

/** Longest a foreground read waits for a prefetch already reading its clusters (then it reads itself). */
const JOIN_PREFETCH_MS = 20;

export interface PrefetchCounters {
  /** Sequential windows and strided batches started. */
  windows: number;
  strided: number;
  /** Neighbour windows started. */
  neighbourWindows: number;
  /** Cold small-file reads whose neighbour blocks were all issued recently. */
  neighbourSkippedRecent: number;
  /** Cold small-file reads that found MAX_PREFETCH_INFLIGHT prefetches running. */
  neighbourSkippedBusy: number;
  skippedNoSlot: number;
  failed: number;
  /** The last sequential window (clusters) and the reader rate it was sized for (bytes/s, 0 = not yet known). */
  lastWindowClusters: number;
  lastRateBps: number;
}

/**
 * One per daemon (per scheduler handle): created by `cachedReaderFor(deps)` on first use, found again
 * by `invalidateRuns(scheduler, runs)` from the write path.
 */
export class CachedReader {
  /** Detectors by inode (between STREAMS and 2 × STREAMS of the most recently read files). */
  private readonly streams = new QuickLRU<number, Stream>({ maxSize: STREAMS });
  private prefetchInflight = 0;
  /**
   * Neighbour blocks (map clusters [b × size, (b + 1) × size), size = neighbour_clusters when they
   * were issued) issued in the last NEIGHBOUR_MEMORY_MS.
   */
  private readonly neighbourRecent = new QuickLRU<number, true>({
    maxSize: NEIGHBOUR_BLOCKS,
    maxAge: NEIGHBOUR_MEMORY_MS,
  });
  private neighbourBlockSize = 0;
  /** Neighbour windows under way (map clusters). */
  private readonly neighbourInflight = new Set<Inflight>();
  /** An invalidation failed: serve nothing from the cache until a clear succeeds. */
  private suspect = false;
  readonly prefetch: PrefetchCounters = {
    windows: 0,
    strided: 0,
    neighbourWindows: 0,
    neighbourSkippedRecent: 0,
    neighbourSkippedBusy: 0,
    skippedNoSlot: 0,
    failed: 0,
    lastWindowClusters: 0,
    lastRateBps: 0,
  };

  /** Sequential read-ahead in read slots (null: io.readahead_bytes 0, the cache prefetches instead). */
  private readonly readAhead: ReadAhead | null;

  constructor(private readonly deps: CachedReadDeps) {
    const windows = Math.floor(deps.config.io.readahead_bytes / deps.readSlab.slotSize);
    // Two streams at full lead, and never the slots foreground reads and prefetch need.
    const spare = deps.readSlab.slotCount - 2 * READ_SLOT_RESERVE;
    this.readAhead =
      windows >= 2 && spare >= 2
        ? new ReadAhead(
            { ...deps, fill: (plan, slot) => this.fillWindow(plan, slot) },
            {
              maxWindows: Math.min(windows, spare),
              maxTotal: Math.min(2 * windows, spare),
              reserve: READ_SLOT_RESERVE,
              maxLoading: WINDOW_LOADS,
              leadS: WINDOW_LEAD_S,
              adviseBytes: ADVISE_WINDOWS * windows * deps.readSlab.slotSize,
            },
          )
        : null;
  }

  /** Read-ahead window counters (null when the cache actor does sequential read-ahead). */
  get readAheadCounters(): ReadAheadCounters | null {
    return this.readAhead ? { ...this.readAhead.counters } : null;
  }

  private get cache(): ActorHandle<CacheOps> | undefined {
    const c = this.deps.cache;
    return c && c.state !== 'failed' && c.state !== 'stopped' ? c : undefined;
  }

  // ---- foreground read ------------------------------------------------------------------------------

  async read(ino: number, size: number, offset: number, caller: Caller, sink: ReadSink): Promise<void> {
    const { journal, readSlab: slab } = this.deps;
    const length = Math.min(size, slab.slotSize);
    this.readAhead?.requested(ino, offset + length);
    const plan = await journal.request(
      'planRead',
      { ino, offset, length },
      { priority: 'interactive', caller, idempotent: true },
    );
    if (plan.length === 0) {
      sink(null, 0, 0);
      return;
    }
    if (this.readAhead && (await this.readAhead.serve(plan, sink))) {
      if (this.deps.config.cache.prefetch.enabled) this.observe(ino, plan);
      return;
    }
    await this.joinPrefetch(ino, plan);
    const slot = await slab.alloc(SLOT_WAIT_MS);
    let owned = true;
    let cold = false;
    try {
      const cache = await this.cacheFor(plan);
      if (!cache) {
        const n = await this.schedulerRead(plan, slot, 0, plan.length, 'interactive', caller);
        sink(slab.bytes(slot), 0, n);
      } else {
        const fetched = await this.readThroughCache(cache, plan, slot, 'interactive', caller);
        sink(slab.bytes(slot), plan.offset - plan.fileCluster * CLUSTER_SIZE, plan.length);
        if (fetched) {
          cold = true;
          owned = false;
          void this.insertFrom(slot, fetched.runs, fetched.token, 'read', 'interactive').finally(() =>
            slab.free(slot),
          );
        }
      }
    } finally {
      if (owned) slab.free(slot);
    }
    if (this.deps.config.cache.prefetch.enabled) {
      this.observe(ino, plan);
      if (cold && this.deps.cache) this.observeNeighbours(plan);
    }
  }

  /**
   * A sequential reader catching up with its own prefetch would fetch the same clusters a second
   * time: when the window covering this read is already at the scheduler, wait (briefly) for it.
   * A window still queued behind foreground work is not waited for.
   */
  private async joinPrefetch(ino: number, plan: ReadPlan): Promise<void> {
    let f: Inflight | null | undefined = this.streams.peek(ino)?.inflight;
    if (!f || !f.reading || plan.offset + plan.length <= f.from || plan.offset >= f.to) f = null;
    if (!f && this.neighbourInflight.size > 0) f = this.neighbourCovering(plan);
    if (!f) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      f.done.catch(() => undefined),
      new Promise((r) => (timer = setTimeout(r, JOIN_PREFETCH_MS))),
    ]);
    clearTimeout(timer);
  }

  /** A neighbour window already reading one of the plan's map clusters. */
  private neighbourCovering(plan: ReadPlan): Inflight | null {
    for (const w of this.neighbourInflight) {
      if (!w.reading) continue;
      for (const seg of plan.segments) {
        if (seg.mapCluster !== null && seg.mapCluster < w.to && seg.mapCluster + seg.count > w.from) return w;
      }
    }
    return null;
  }

  /**
   * A read-ahead window's bytes: the cache's hits, the scheduler's for the rest, which are then
   * inserted as prefetched data. Resolves once the slot holds the plan's clusters (cluster i at
   * i × 4096); `settled` settles when the insert no longer reads the slot.
   */
  private async fillWindow(plan: ReadPlan, slot: number): Promise<{ settled: Promise<void> }> {
    const cache = await this.cacheFor(plan);
    if (!cache) {
      await this.schedulerRead(plan, slot, 0, plan.length, 'background');
      return { settled: Promise.resolve() };
    }
    const fetched = await this.readThroughCache(cache, plan, slot, 'background');
    if (!fetched) return { settled: Promise.resolve() };
    return { settled: this.insertFrom(slot, fetched.runs, fetched.token, 'prefetch', 'background') };
  }

  /**
   * The cache for a read of `plan` into one slot: none when the cache actor is down or cannot be
   * trusted yet, when the plan's whole clusters exceed a slot, or when it is all holes.
   */
  private async cacheFor(plan: ReadPlan): Promise<ActorHandle<CacheOps> | undefined> {
    const cache = this.cache;
    if (!cache || plan.clusterCount * CLUSTER_SIZE > this.deps.readSlab.slotSize) return undefined;
    if (!plan.segments.some((s) => s.mapCluster !== null)) return undefined;
    return (await this.usable()) ? cache : undefined;
  }

  /**
   * The plan's whole clusters into `slot` (cluster i at i × 4096): the cache copies its hits in,
   * the scheduler reads the span the cache left. Resolves to the runs the scheduler fetched and the
   * token to insert them with, or null when there is nothing to insert (all hits, or the cache did
   * not answer: then the scheduler read everything).
   */
  private async readThroughCache(
    cache: ActorHandle<CacheOps>,
    plan: ReadPlan,
    slot: number,
    priority: 'interactive' | 'background',
    caller?: Caller,
  ): Promise<{ runs: CacheRun[]; token: CacheToken } | null> {
    const span = plan.clusterCount * CLUSTER_SIZE;
    let missFrom = 0;
    let missTo = plan.clusterCount;
    let token: CacheToken | null = null;
    try {
      ({ missFrom, missTo, token } = await cache.request(
        'read',
        { segments: plan.segments.map(toCacheSegment) },
        { priority, caller, data: this.deps.readSlab.ref(slot, 0, span) },
      ));
    } catch (err) {
      // The cache can slow a read, never fail it: the scheduler reads it all and nothing is inserted.
      // Overload is expected under pressure; anything else is reported.
      if ((err as { code?: string }).code !== 'IMAP_E_OVERLOADED')
        this.deps.onBackgroundError?.(err, 'cache lookup');
    }
    if (missFrom >= missTo) return null;
    const sub = clusterSpan(plan, missFrom, missTo);
    const at = missFrom * CLUSTER_SIZE;
    await this.schedulerRead(sub, slot, at, sub.length, priority, caller);
    return token ? { runs: runsOf(sub, at), token } : null;
  }

  /** cache.insert of `runs` from `slot`; settles (never rejects) when the cache is done with the slot. */
  private async insertFrom(
    slot: number,
    runs: CacheRun[],
    token: CacheToken,
    source: InsertSource,
    priority: 'interactive' | 'background',
  ): Promise<void> {
    const cache = this.cache;
    if (!cache || runs.length === 0) return;
    try {
      await cache.request(
        'insert',
        { runs, token, source },
        { priority, data: this.deps.readSlab.ref(slot) },
      );
    } catch (err) {
      // Not cached this time; a later read fetches it again.
      if ((err as { code?: string }).code !== 'IMAP_E_OVERLOADED')
        this.deps.onBackgroundError?.(err, 'cache insert');
    }
  }

  /** Plain path: the scheduler reads `plan` into the slot at `at`. */
  private schedulerRead(
    plan: ReadPlan,
    slot: number,
    at: number,
    length: number,
    priority: 'interactive' | 'background',
    caller?: Caller,
  ): Promise<number> {
    return this.deps.scheduler.request(
      'read',
      { plan },
      { priority, caller, idempotent: true, data: this.deps.readSlab.ref(slot, at, length) },
    );
  }

  /** After a failed invalidation the cache may hold clusters since rewritten: clear before use. */
  private async usable(): Promise<boolean> {
    if (!this.suspect) return true;
    try {
      await this.cache?.request('clear', {}, { priority: 'interactive' });
      this.suspect = false;
    } catch {
      return false;
    }
    return true;
  }

  // ---- invalidation --------------------------------------------------------------------------------

  /**
   * Drops map clusters about to become live with new content (a write plan's or truncate tail's new
   * runs). Call after the scheduler wrote them and before the journal commits them. Never throws: if
   * the cache cannot be told, it is cleared before its next use.
   */
  async invalidate(ranges: readonly ClusterRange[]): Promise<void> {
    this.readAhead?.invalidate(ranges);
    const cache = this.deps.cache;
    if (!cache || ranges.length === 0) return;
    try {
      await cache.request(
        'invalidate',
        { ranges: [...ranges] },
        { priority: 'interactive', idempotent: true },
      );
    } catch {
      // A failed actor restarts empty; anything else (overload, stop) leaves entries we cannot vouch for.
      this.suspect = true;
    }
  }

  // ---- prefetch ---------------------------------------------------------------------------------------

  /** Feeds one foreground read into the file's detector and starts a prefetch if a pattern holds. */
  private observe(ino: number, plan: ReadPlan): void {
    const offset = plan.offset;
    const end = plan.offset + plan.length;
    let s = this.streams.get(ino);
    if (!s) {
      s = {
        lastOffset: -1,
        lastEnd: -1,
        lastLength: 0,
        stride: 0,
        seqRun: 0,
        strideRun: 0,
        frontier: 0,
        window: FIRST_WINDOW,
        rateBps: 0,
        markMs: 0,
        markEnd: -1,
        busy: false,
        eof: false,
        inflight: null,
      };
      this.streams.set(ino, s);
    }
    const len = plan.length;
    // The kernel sends readahead requests concurrently, so a sequential stream can arrive slightly
    // out of order: anything starting within a few request lengths of the last end counts.
    const slack = 4 * Math.max(len, s.lastLength);
    const sequential = s.lastEnd >= 0 && offset >= s.lastOffset - slack && offset <= s.lastEnd + slack;
    if (sequential) {
      s.seqRun++;
      s.strideRun = 0;
    } else {
      s.seqRun = 0;
      const stride = offset - s.lastOffset;
      if (s.lastOffset >= 0 && stride === s.stride && stride !== 0) s.strideRun++;
      else {
        s.strideRun = 0;
        s.stride = stride;
        s.frontier = 0;
        s.window = FIRST_WINDOW;
        s.rateBps = 0;
        s.markEnd = -1;
        s.eof = false;
      }
    }
    s.lastOffset = offset;
    s.lastEnd = Math.max(sequential ? s.lastEnd : 0, end);
    s.lastLength = len;
    if (this.readAhead) {
      if (s.seqRun >= TRIGGER) {
        this.readAhead.advance(ino, offset, s.lastEnd, plan.size);
        return;
      }
      // The pattern broke: the windows ahead of the old position are of no use now.
      if (!sequential) this.readAhead.forget(ino);
    }
    if (!this.deps.cache) return;
    if (s.busy || s.eof || this.prefetchInflight >= MAX_PREFETCH_INFLIGHT) return;
    const maxWindow = this.deps.config.cache.prefetch.window_clusters;
    if (s.seqRun >= TRIGGER) {
      const windowBytes = this.sequentialWindow(s, maxWindow) * CLUSTER_SIZE;
      if (s.frontier < s.lastEnd) s.frontier = alignUp(s.lastEnd);
      // Start the next window when the reader is within half a window of the prefetched frontier.
      if (s.frontier - s.lastEnd > windowBytes / 2) return;
      this.measureRate(s);
      const from = s.frontier;
      s.frontier = from + windowBytes;
      s.window = Math.min(s.window * 2, maxWindow);
      this.prefetch.windows++;
      this.prefetch.lastWindowClusters = windowBytes / CLUSTER_SIZE;
      this.prefetch.lastRateBps = Math.round(s.rateBps);
      this.startPrefetch(s, ino, from, windowBytes, [{ offset: from, length: windowBytes }]);
    } else if (s.strideRun >= TRIGGER && s.stride > 0) {
      const per = Math.ceil(len / CLUSTER_SIZE) + 1;
      const count = Math.max(
        1,
        Math.min(Math.floor(maxWindow / per), Math.floor(MAX_STRIDE_SPAN / s.stride)),
      );
      let next = Math.max(s.frontier, offset + s.stride);
      if (next - offset > (count * s.stride) / 2) return;
      const pieces: Array<{ offset: number; length: number }> = [];
      for (let k = 0; k < count; k++, next += s.stride) pieces.push({ offset: next, length: len });
      s.frontier = next;
      this.prefetch.strided++;
      const spanFrom = pieces[0]!.offset;
      this.startPrefetch(s, ino, spanFrom, next - s.stride + len - spanFrom, pieces);
    }
  }

  /**
   * Clusters of the next sequential window: the ramp (×2 per window from FIRST_WINDOW) capped by
   * window_clusters and by WINDOW_LEAD_S of the reader's measured rate (never below FIRST_WINDOW).
   */
  private sequentialWindow(s: Stream, maxWindow: number): number {
    let window = Math.min(s.window, maxWindow);
    if (s.rateBps > 0) {
      const forRate = Math.ceil((s.rateBps * WINDOW_LEAD_S) / CLUSTER_SIZE);
      window = Math.min(window, Math.max(FIRST_WINDOW, forRate));
    }
    return Math.max(1, Math.min(window, maxWindow));
  }

  /** The reader's rate since the previous window started, averaged with the earlier estimate. */
  private measureRate(s: Stream): void {
    const now = performance.now();
    if (s.markEnd >= 0 && s.lastEnd > s.markEnd && now - s.markMs >= 1) {
      const rate = ((s.lastEnd - s.markEnd) * 1000) / (now - s.markMs);
      s.rateBps = s.rateBps > 0 ? (s.rateBps + rate) / 2 : rate;
    }
    s.markMs = now;
    s.markEnd = s.lastEnd;
  }

  private startPrefetch(
    s: Stream,
    ino: number,
    offset: number,
    length: number,
    pieces: Array<{ offset: number; length: number }>,
  ): void {
    s.busy = true;
    this.prefetchInflight++;
    const inflight: Inflight = {
      from: offset,
      to: offset + length,
      reading: false,
      done: Promise.resolve(),
    };
    s.inflight = inflight;
    inflight.done = this.fetchInto(ino, offset, length, pieces, 'prefetch', () => (inflight.reading = true))
      .then((r) => {
        if (r === 'eof') s.eof = true;
      })
      .catch((err: unknown) => {
        this.prefetch.failed++;
        this.deps.onBackgroundError?.(err, 'prefetch');
      })
      .finally(() => {
        s.busy = false;
        if (s.inflight === inflight) s.inflight = null;
        this.prefetchInflight--;
      });
  }

  /**
   * Background fill: plans [offset, offset + length) of `ino`, keeps the clusters that cover `pieces`
   * and are not cached yet, reads them from the scheduler (one request per slot-full) and inserts them.
   */
  private async fetchInto(
    ino: number,
    offset: number,
    length: number,
    pieces: Array<{ offset: number; length: number }>,
    source: InsertSource,
    onReading?: () => void,
  ): Promise<'ok' | 'eof' | 'skipped'> {
    const { journal } = this.deps;
    if (!this.cache || this.suspect) return 'skipped';
    const bg = { priority: 'background', idempotent: true } as const;
    const plan = await journal.request('planRead', { ino, offset, length }, bg);
    if (plan.length === 0) return 'eof';
    // The plan's data clusters that some piece covers.
    const wanted: Piece[] = [];
    for (const seg of plan.segments) {
      if (seg.mapCluster === null || !seg.crcs) continue;
      for (let k = 0; k < seg.count; k++) {
        const fc = seg.fileCluster + k;
        const from = fc * CLUSTER_SIZE;
        if (!pieces.some((p) => p.offset < from + CLUSTER_SIZE && p.offset + p.length > from)) continue;
        appendCluster(wanted, ino, fc, seg.mapCluster + k, seg.crcs.subarray(k * 4, k * 4 + 4));
      }
    }
    const r = await this.fetchPieces(wanted, source, onReading);
    if (r === 'skipped') return r;
    return plan.length < length ? 'eof' : 'ok';
  }

  /**
   * Probes `wanted` (data clusters of any files, with the CRCs their extents name), reads the ones
   * not cached from the scheduler, a slot-full per request, and inserts them with the probe's token.
   */
  private async fetchPieces(
    wanted: readonly Piece[],
    source: InsertSource,
    onReading?: () => void,
  ): Promise<'ok' | 'skipped'> {
    const slab = this.deps.readSlab;
    const cache = this.cache;
    if (!cache) return 'skipped';
    if (wanted.length === 0) return 'ok';
    const ranges = wanted.map((w) => ({ first: w.mapCluster!, count: w.count }));
    const { cached, token } = await cache.request('probe', { ranges }, { priority: 'background' });
    const missing: Piece[] = [];
    let i = 0;
    for (const w of wanted) {
      for (let k = 0; k < w.count; k++, i++) {
        if (cached[i] !== 1) {
          appendCluster(
            missing,
            w.ino,
            w.fileCluster + k,
            w.mapCluster! + k,
            w.crcs!.subarray(k * 4, k * 4 + 4),
          );
        }
      }
    }
    const perSlot = slab.slotSize / CLUSTER_SIZE;
    for (let from = 0; from < missing.length;) {
      // One slot-full of clusters at a time.
      const batch: Piece[] = [];
      let clusters = 0;
      while (from < missing.length && clusters < perSlot) {
        const seg = missing[from]!;
        const take = Math.min(seg.count, perSlot - clusters);
        batch.push(take === seg.count ? seg : slicePiece(seg, 0, take));
        if (take === seg.count) from++;
        else missing[from] = slicePiece(seg, take, seg.count);
        clusters += take;
      }
      if (slab.freeSlots <= READ_SLOT_RESERVE) {
        this.prefetch.skippedNoSlot++;
        return 'skipped';
      }
      const slot = slab.tryAlloc();
      if (slot < 0) {
        this.prefetch.skippedNoSlot++;
        return 'skipped';
      }
      try {
        const gather = gatherPlan(batch);
        onReading?.();
        await this.schedulerRead(gather, slot, 0, gather.length, 'background');
        const runs: CacheRun[] = [];
        let at = 0;
        for (const seg of batch) {
          runs.push({
            at,
            mapCluster: seg.mapCluster!,
            count: seg.count,
            crcs: seg.crcs!,
            ino: seg.ino,
            fileCluster: seg.fileCluster,
          });
          at += seg.count * CLUSTER_SIZE;
        }
        await this.insertFrom(slot, runs, token, source, 'background');
      } finally {
        slab.free(slot);
      }
    }
    return 'ok';
  }

  // ---- neighbour prefetch -----------------------------------------------------------------------------

  /**
   * After a foreground read of a small file that had to go to the scheduler: fetch the map clusters
   * stored after the plan's last data cluster (the files written with it), unless those blocks were
   * issued recently or MAX_PREFETCH_INFLIGHT prefetches are running.
   *
   * The window is cut into blocks of `neighbour_clusters` map clusters; [end, end + size) touches at
   * most two, and every block it touches that was not issued in the last NEIGHBOUR_MEMORY_MS is
   * fetched, from `end` on (so a window is one to two blocks long). A read in the middle of a block
   * already fetched issues nothing: its miss was a cluster the window could not cover (evicted,
   * rewritten since) or is being read right now.
   */
  private observeNeighbours(plan: ReadPlan): void {
    const size = this.deps.config.cache.prefetch.neighbour_clusters;
    if (!(size > 0) || plan.size === undefined || plan.size > SMALL_FILE_CLUSTERS * CLUSTER_SIZE) return;
    let end = -1;
    for (const seg of plan.segments) {
      if (seg.mapCluster !== null && seg.crcs) end = Math.max(end, seg.mapCluster + seg.count);
    }
    if (end < 0) return;
    if (this.neighbourBlockSize !== size) {
      // The size changed (a config reload): blocks of the old size mean nothing now.
      this.neighbourRecent.clear();
      this.neighbourBlockSize = size;
    }
    const b0 = Math.floor(end / size);
    const b1 = Math.floor((end + size - 1) / size);
    let first = -1;
    let last = -1;
    for (let b = b0; b <= b1; b++) {
      if (this.neighbourRecent.has(b)) {
        if (first >= 0) break;
        continue;
      }
      if (first < 0) first = Math.max(end, b * size);
      last = b;
    }
    if (first < 0) {
      this.prefetch.neighbourSkippedRecent++;
      return;
    }
    if (this.prefetchInflight >= MAX_PREFETCH_INFLIGHT) {
      this.prefetch.neighbourSkippedBusy++;
      return;
    }
    for (let b = Math.floor(first / size); b <= last; b++) this.neighbourRecent.set(b, true);
    this.startNeighbours(first, (last + 1) * size - first);
  }

  private startNeighbours(first: number, count: number): void {
    this.prefetch.neighbourWindows++;
    this.prefetchInflight++;
    const w: Inflight = { from: first, to: first + count, reading: false, done: Promise.resolve() };
    this.neighbourInflight.add(w);
    w.done = this.fetchNeighbours(first, count, () => (w.reading = true))
      .catch((err: unknown) => {
        this.prefetch.failed++;
        this.deps.onBackgroundError?.(err, 'neighbour prefetch');
      })
      .finally(() => {
        this.neighbourInflight.delete(w);
        this.prefetchInflight--;
      });
  }

  /** Map clusters [first, first + count): which files own them (journal), then fetchPieces. */
  private async fetchNeighbours(first: number, count: number, onReading: () => void): Promise<void> {
    if (!this.cache || this.suspect) return;
    const segments = await this.deps.journal.request(
      'mapSegments',
      { first, count, limit: count },
      { priority: 'background', idempotent: true },
    );
    const wanted: Piece[] = segments.map((s) => ({
      ino: s.ino,
      fileCluster: s.fileCluster,
      count: s.count,
      mapCluster: s.mapCluster,
      crcs: s.crcs as Buffer,
    }));
    await this.fetchPieces(wanted, 'neighbour', onReading);
  }

  // ---- warming ----------------------------------------------------------------------------------------

  /**
   * Loads the clusters recorded at the last clean unmount (cache.warmList), hottest first, at
   * background priority. Resolves to the clusters inserted. Never throws.
   */
  async warm(): Promise<number> {
    const cache = this.cache;
    if (!cache) return 0;
    let runs: WarmRun[];
    try {
      runs = await cache.request('warmList', {}, { priority: 'background' });
    } catch {
      return 0;
    }
    const maxRun = this.deps.readSlab.slotSize / CLUSTER_SIZE;
    for (const run of runs) {
      for (let c = 0; c < run.count; c += maxRun) {
        const count = Math.min(maxRun, run.count - c);
        const offset = (run.fileCluster + c) * CLUSTER_SIZE;
        const length = count * CLUSTER_SIZE;
        for (let attempt = 0; ; attempt++) {
          try {
            await this.fetchInto(run.ino, offset, length, [{ offset, length }], 'warm');
            break;
          } catch (err) {
            const code = (err as { code?: string }).code;
            // A queue full of foreground work: wait and retry; a file gone since: skip it.
            if (code === 'IMAP_E_OVERLOADED' && attempt < 20) await new Promise((r) => setTimeout(r, 50));
            else break;
          }
        }
      }
    }
    try {
      return (await cache.request('stats', {}, { priority: 'background' })).warm.inserted;
    } catch {
      return 0;
    }
  }
}

// ---- plan helpers --------------------------------------------------------------------------------------

function toCacheSegment(s: Segment): CacheSegment {
  return { mapCluster: s.mapCluster, count: s.count, crcs: s.crcs };
}

function alignUp(n: number): number {
  return Math.ceil(n / CLUSTER_SIZE) * CLUSTER_SIZE;
}

function sliceSegment(s: Segment, from: number, to: number): Segment {
  return {
    fileCluster: s.fileCluster + from,
    count: to - from,
    mapCluster: s.mapCluster === null ? null : s.mapCluster + from,
    crcs: s.crcs ? (s.crcs.subarray(from * 4, to * 4) as Buffer) : null,
  };
}

function slicePiece(p: Piece, from: number, to: number): Piece {
  return { ino: p.ino, ...sliceSegment(p, from, to) };
}

/**
 * Appends one data cluster, extending the last piece when it is of the same file and both file and
 * map clusters follow on.
 */
function appendCluster(
  out: Piece[],
  ino: number,
  fileCluster: number,
  mapCluster: number,
  crc: Uint8Array,
): void {
  const last = out[out.length - 1];
  if (
    last &&
    last.ino === ino &&
    last.fileCluster + last.count === fileCluster &&
    last.mapCluster! + last.count === mapCluster
  ) {
    const crcs = new Uint8Array((last.count + 1) * 4);
    crcs.set(last.crcs!);
    crcs.set(crc, last.count * 4);
    last.crcs = crcs as Buffer;
    last.count++;
    return;
  }
  out.push({ ino, fileCluster, count: 1, mapCluster, crcs: Uint8Array.from(crc) as Buffer });
}

/** The whole clusters [from, to) of `plan` (indices from its first cluster) as a plan of their own. */
export function clusterSpan(plan: ReadPlan, from: number, to: number): ReadPlan {
  const segments: Segment[] = [];
  let i = 0;
  for (const s of plan.segments) {
    const a = Math.max(from, i);
    const b = Math.min(to, i + s.count);
    if (a < b) segments.push(sliceSegment(s, a - i, b - i));
    i += s.count;
  }
  const fileCluster = plan.fileCluster + from;
  return {
    ino: plan.ino,
    offset: fileCluster * CLUSTER_SIZE,
    length: (to - from) * CLUSTER_SIZE,
    fileCluster,
    clusterCount: to - from,
    segments,
  };
}

/**
 * A plan the scheduler's executor reads as the concatenation of `segments` (data only, any file
 * positions): whole clusters, back to back from byte 0 of the slot.
 */
function gatherPlan(pieces: readonly Piece[]): ReadPlan {
  const clusters = pieces.reduce((n, s) => n + s.count, 0);
  const fileCluster = pieces[0]!.fileCluster;
  return {
    // The executor names plan.ino (and the segment's file cluster) in a CRC error; with pieces of
    // several files (neighbour prefetch) the first one's.
    ino: pieces[0]!.ino,
    offset: fileCluster * CLUSTER_SIZE,
    length: clusters * CLUSTER_SIZE,
    fileCluster,
    clusterCount: clusters,
    segments: pieces.map((p) => ({
      fileCluster: p.fileCluster,
      count: p.count,
      mapCluster: p.mapCluster,
      crcs: p.crcs,
    })),
  };
}

/** The data runs of a whole-cluster plan, with `at` from `base` (the plan's position in the slot). */
function runsOf(plan: ReadPlan, base: number): CacheRun[] {
  const runs: CacheRun[] = [];
  let at = base;
  for (const s of plan.segments) {
    if (s.mapCluster !== null && s.crcs) {
      runs.push({
        at,
        mapCluster: s.mapCluster,
        count: s.count,
        crcs: s.crcs,
        ino: plan.ino,
        fileCluster: s.fileCluster,
      });
    }
    at += s.count * CLUSTER_SIZE;
  }
  return runs;
}

// ---- per-daemon registry ------------------------------------------------------------------------------

const readers = new WeakMap<object, CachedReader>();

/** The daemon's CachedReader (one per scheduler handle), created on first use. */
export function cachedReaderFor(deps: CachedReadDeps): CachedReader {
  let r = readers.get(deps.scheduler);
  if (!r) {
    r = new CachedReader(deps);
    readers.set(deps.scheduler, r);
  }
  return r;
}

/**
 * For the write path (write-behind flush, truncate): drops `runs` (map clusters about to be
 * committed with new content) from the cache of the daemon that owns `scheduler`. A no-op when no
 * cached read ever ran. Call after `scheduler.write` / `truncateTail` and before the commit.
 */
export function invalidateRuns(
  scheduler: ActorHandle<SchedulerOps>,
  runs: ReadonlyArray<{ start: number; length: number }> | null | undefined,
): Promise<void> {
  const reader = readers.get(scheduler);
  if (!reader || !runs || runs.length === 0) return Promise.resolve();
  return reader.invalidate(runs.map((r) => ({ first: r.start, count: r.length })));
}

/** The prefetch counters of the daemon that owns `scheduler` (null before its first cached read). */
export function prefetchCounters(scheduler: ActorHandle<SchedulerOps>): PrefetchCounters | null {
  const reader = readers.get(scheduler);
  return reader ? { ...reader.prefetch } : null;
}

/** The read-ahead window counters of the daemon that owns `scheduler` (null: none, or none yet). */
export function readAheadCounters(scheduler: ActorHandle<SchedulerOps>): ReadAheadCounters | null {
  return readers.get(scheduler)?.readAheadCounters ?? null;
}

/** Starts loading the warm file's clusters in the background; resolves to the clusters inserted. */
export function warmCache(deps: CachedReadDeps): Promise<number> {
  return cachedReaderFor(deps).warm();
}
