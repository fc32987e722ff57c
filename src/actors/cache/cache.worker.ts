/**
 * The cache actor: clean map clusters in two tiers (L1 slots in a SharedArrayBuffer slab, L2
 * deflated), exact LRU in each, invalidation with race-proof inserts, statistics, and the warm file
 * (recorded at drain, read at start). The state and its rules are in tiered-cache.ts; the reader side
 * (lookups, misses through the scheduler, prefetch, warming) is src/fuse/cached-read.ts.
 *
 *   lifecycle: see runtime/lifecycle.ts
 *
 * Ownership: the tiers belong to this thread. A request's SlotRef (a read-slab slot of the caller)
 * belongs to the handler for the duration of the request: `read` writes hits into it, `insert` reads
 * the runs out of it. A restarted worker starts empty, with a new instance id, so tokens handed out
 * by its predecessor are refused.
 */
import type { CacheOps } from '../../protocol/cache';
import { ImapError } from '../../protocol/errors';
import { runActor, type ActorContext } from '../runtime/host';
import { TieredCache } from './tiered-cache';
import { readWarmFile, writeWarmFile } from './warm-file';
import type { WarmRun } from '../../protocol/cache';

export interface CacheOptions {
  l1Bytes: number;
  l2Bytes: number;
  /** See cache.l2_streamed (default false). */
  l2Streamed?: boolean;
  /** MAP.png.cachewarm; no warm file without it. */
  warmPath?: string;
  /** Clusters recorded at most (default: L1's capacity). */
  warmClusters?: number;
}

interface CacheState {
  cache: TieredCache;
  options: CacheOptions;
  warm: WarmRun[];
}

function slotOf(ctx: ActorContext<CacheState>): Uint8Array {
  const ref = ctx.request.data;
  if (!ref) throw new ImapError('IMAP_E_INTERNAL', `${ctx.request.op} without a data slot`);
  return ctx.slabs.view(ref);
}

function record(state: CacheState): number {
  const { warmPath } = state.options;
  if (!warmPath) return 0;
  const runs = state.cache.hottest(state.options.warmClusters ?? state.cache.l1Capacity);
  // An empty cache (nothing read this time) keeps the previous list rather than erasing it.
  if (runs.length > 0) writeWarmFile(warmPath, runs);
  return runs.reduce((n, r) => n + r.count, 0);
}

runActor<CacheOps, CacheState>({
  name: 'cache',
  init({ options }) {
    const o = options as CacheOptions;
    const cache = new TieredCache({ l1Bytes: o.l1Bytes, l2Bytes: o.l2Bytes, l2Streamed: o.l2Streamed });
    const warm = o.warmPath ? readWarmFile(o.warmPath) : [];
    cache.noteWarmListed(warm.reduce((n, r) => n + r.count, 0));
    return { cache, options: o, warm };
  },
  handlers: {
    read: (p, ctx) => ctx.state.cache.read(p.segments, slotOf(ctx)),
    probe: (p, { state }) => state.cache.probe(p.ranges),
    insert: (p, ctx) => ctx.state.cache.insert(p.runs, p.token, p.source, slotOf(ctx)),
    invalidate: (p, { state }) => state.cache.invalidate(p.ranges),
    clear: (_p, { state }) => state.cache.clear(),
    warmList: (_p, { state }) => {
      const runs = state.warm;
      state.warm = []; // handed out once: a second mount-time warm-up would only repeat the I/O
      return runs;
    },
    recordWarm: (_p, { state }) => record(state),
    stats: (_p, { state }) => state.cache.stats(),
  },
  drain(state) {
    record(state);
  },
});
