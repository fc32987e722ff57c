/**
 * The cache actor: an LRU of cluster contents (quick-lru) bounded by a byte budget.
 *
 *   lifecycle: see runtime/lifecycle.ts
 *
 * Ownership: the LRU and its buffers belong to this thread; data comes and goes through slab slots.
 * This is the first tier only; the compressed tier, prefetch and warming are the cache issue's.
 */
import QuickLRU from 'quick-lru';
import type { CacheOps, CacheStats } from '../../protocol/minor-actors';
import { CLUSTER_SIZE } from '../../fs/types';
import { ImapError } from '../../protocol/errors';
import { runActor, type ActorContext } from '../runtime/host';

export interface CacheOptions {
  l1Bytes: number;
}

interface CacheState {
  lru: QuickLRU<number, Buffer>;
  budgetBytes: number;
  counters: { hits: number; misses: number; evictions: number };
}

function slotOf(ctx: ActorContext<CacheState>): Uint8Array {
  const ref = ctx.request.data;
  if (!ref) throw new ImapError('IMAP_E_INTERNAL', `${ctx.request.op} without a data slot`);
  return ctx.slabs.view(ref);
}

runActor<CacheOps, CacheState>({
  name: 'cache',
  init({ options }) {
    const o = options as CacheOptions;
    const counters = { hits: 0, misses: 0, evictions: 0 };
    const maxSize = Math.max(1, Math.floor(o.l1Bytes / CLUSTER_SIZE));
    const lru = new QuickLRU<number, Buffer>({ maxSize, onEviction: () => counters.evictions++ });
    return { lru, budgetBytes: maxSize * CLUSTER_SIZE, counters };
  },
  handlers: {
    put: (p, ctx) => {
      const data = slotOf(ctx);
      for (let i = 0; i < p.count; i++) {
        const copy = Buffer.allocUnsafe(CLUSTER_SIZE);
        copy.set(data.subarray(i * CLUSTER_SIZE, (i + 1) * CLUSTER_SIZE));
        ctx.state.lru.set(p.cluster + i, copy);
      }
      return null;
    },
    get: (p, ctx) => {
      const hit = ctx.state.lru.get(p.cluster);
      if (!hit) {
        ctx.state.counters.misses++;
        return false;
      }
      ctx.state.counters.hits++;
      slotOf(ctx).set(hit);
      return true;
    },
    invalidate: (p, { state }) => {
      let dropped = 0;
      for (let c = p.first; c < p.first + p.count; c++) if (state.lru.delete(c)) dropped++;
      return dropped;
    },
    stats: (_p, { state }): CacheStats => ({
      entries: state.lru.size,
      bytes: state.lru.size * CLUSTER_SIZE,
      budgetBytes: state.budgetBytes,
      ...state.counters,
    }),
  },
});
