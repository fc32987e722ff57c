/**
 * The scheduler actor: owns the map file. Every cluster read and write, the container checkpoint and
 * growth happen here, so the PNG has exactly one writer.
 *
 *   lifecycle: see runtime/lifecycle.ts (created → starting → ready ⇄ degraded → draining → stopped)
 *
 * The parallel executor: up to `concurrency` requests (scheduler.max_inflight) are served at once.
 * Their cluster I/O runs in the libuv thread pool, one batch per run plan (MapContainer's *Async
 * calls), so reads and writes of different clusters overlap. Order is kept by a RangeGate over map
 * clusters, entered synchronously as each request arrives, i.e. in the order the front end's
 * priority queue dispatched them:
 *   - a write (its new runs) waits for earlier reads and writes of those clusters, a read waits for
 *     earlier writes of its clusters: per cluster, submission order;
 *   - sync is a barrier for writes (it covers every write submitted before it; reads go on);
 *   - checkpoint and growth are barriers for everything (they rewrite checksums or the whole file).
 *
 * Ownership: the MapContainer, the gate and the PlanExecutors belong to this thread. An executor
 * belongs to one request from its first I/O to its reply. A request's slot (SlotRef) belongs to the
 * handler until it replies.
 */
import { workerData } from 'node:worker_threads';
import { MapContainer } from '../../map';
import { RangeGate, type Claim, type Range } from '../../map/range-gate';
import { ioEngine } from '../../map/span-io';
import { PlanExecutor, type AsyncClusterIO } from '../../fs/plan-executor';
import type { ReadPlan, WritePlan } from '../../fs/data-path';
import { ImapError } from '../../protocol/errors';
import type { MapInfo, SchedulerIoStats, SchedulerOps, SchedulerOptions } from '../../protocol/scheduler';
import { runActor, type ActorContext } from '../runtime/host';
import type { ActorWorkerData } from '../runtime/wire';

interface SchedulerState {
  map: MapContainer;
  io: AsyncClusterIO;
  /** The synchronous cluster I/O behind the same interface (see `ordered`). */
  inlineIo: AsyncClusterIO;
  servedInline: number;
  gate: RangeGate;
  spare: PlanExecutor[];
  executors: number;
  inFlight: number;
  peakInFlight: number;
  ioDelayMs: number;
}

const options = (workerData as ActorWorkerData).options as SchedulerOptions;
const CONCURRENCY = Math.max(1, Math.floor(options.concurrency ?? 1));

function info(map: MapContainer): MapInfo {
  const sb = map.superblock;
  return {
    side: map.side,
    clusterCount: map.clusterCount,
    generation: sb.generation,
    uuid: sb.uuid,
    formatVersion: sb.formatVersion,
  };
}

function slotOf(ctx: ActorContext<SchedulerState>): Uint8Array {
  const ref = ctx.request.data;
  if (!ref) throw new ImapError('IMAP_E_INTERNAL', `${ctx.request.op} without a data slot`);
  return ctx.slabs.view(ref);
}

/** Requests of at most this many clusters may run inline (see `ordered`). */
const INLINE_MAX_CLUSTERS = 64;

function claimClusters(claim: Claim): number {
  let n = 0;
  for (const r of claim.reads ?? []) n += r.end - r.start;
  for (const r of claim.writes ?? []) n += r.end - r.start;
  return n;
}

function readClaim(plan: ReadPlan): Claim {
  const reads: Range[] = [];
  for (const seg of plan.segments) {
    if (seg.mapCluster !== null) reads.push({ start: seg.mapCluster, end: seg.mapCluster + seg.count });
  }
  return { reads };
}

function writeClaim(plan: WritePlan): Claim {
  return {
    writes: plan.runs.map((r) => ({ start: r.start, end: r.start + r.length })),
    reads: plan.merge.map((m) => ({ start: m.mapCluster, end: m.mapCluster + 1 })),
  };
}

/**
 * Runs `work` with a plan executor once the claim's turn comes. `enter` is called before the first
 * await, so the gate sees requests in arrival order.
 *
 * `io` is the thread-pool path when other requests are executing, and the synchronous one when this
 * request is alone: then there is nothing to overlap with, and the pool's two thread hand-offs
 * (≈50–150 µs on this shared 2-core machine) would be the larger part of a 4 KiB read. Mixing is
 * safe because a lone request has no asynchronous I/O beside it.
 *
 * A large request goes to the pool even when alone: done inline it holds this thread for the whole
 * device wait (3–10 ms for a cold 1 MiB), so the next window of a sequential reader could not even
 * start; a 256 MiB cold read had this thread busy 95 % of the time, most of it waiting.
 */
async function ordered<T>(
  state: SchedulerState,
  claim: Claim,
  work: (exec: PlanExecutor, io: AsyncClusterIO) => Promise<T>,
): Promise<T> {
  const ticket = await state.gate.enter(claim);
  const small = claimClusters(claim) <= INLINE_MAX_CLUSTERS;
  state.inFlight++;
  if (state.inFlight > state.peakInFlight) state.peakInFlight = state.inFlight;
  let exec = state.spare.pop();
  if (!exec) {
    exec = new PlanExecutor();
    state.executors++;
  }
  try {
    if (state.ioDelayMs > 0) await new Promise((r) => setTimeout(r, state.ioDelayMs));
    if (state.inFlight === 1 && small) {
      state.servedInline++;
      return await work(exec, state.inlineIo);
    }
    return await work(exec, state.io);
  } finally {
    state.spare.push(exec);
    state.inFlight--;
    ticket.leave();
  }
}

/** Structural work (sync, checkpoint, growth) after every earlier conflicting request. */
async function barrier<T>(
  state: SchedulerState,
  kind: 'all' | 'writes',
  work: () => T | Promise<T>,
): Promise<T> {
  const ticket = await state.gate.enter({ barrier: kind });
  try {
    return await work();
  } finally {
    ticket.leave();
  }
}

runActor<SchedulerOps, SchedulerState>({
  name: 'scheduler',
  concurrency: CONCURRENCY,
  init({ options: raw }) {
    const o = raw as SchedulerOptions;
    const map = MapContainer.open(o.mapPath, { readOnly: o.readOnly });
    // The daemon repaired the container before starting actors; a dirty map here means a restarted
    // scheduler after a crash mid-write: repair again so checksums match what is on disk.
    if (map.needsRecovery && !o.readOnly) map.repairChecksums();
    return {
      map,
      io: {
        read: (first, count, out, off) => map.readClustersAsync(first, count, out, off),
        write: (first, data, off, count) => map.writeClustersAsync(first, data, off, count),
      },
      inlineIo: {
        read: (first, count, out, off) => Promise.resolve(map.readClustersBatched(first, count, out, off)),
        write: (first, data, off, count) => Promise.resolve(map.writeClusters(first, data, off, count)),
      },
      servedInline: 0,
      gate: new RangeGate(),
      spare: [],
      executors: 0,
      inFlight: 0,
      peakInFlight: 0,
      ioDelayMs: o.ioDelayMs,
    };
  },
  handlers: {
    read: (p, ctx) => {
      const out = slotOf(ctx);
      return ordered(ctx.state, readClaim(p.plan), (exec, io) => exec.readAsync(io, p.plan, out, 0));
    },
    write: (p, ctx) => {
      const data = slotOf(ctx);
      return ordered(ctx.state, writeClaim(p.plan), async (exec, io) => {
        // The CRCs are a view of the executor's buffer: copy before the executor is reused.
        return new Uint8Array(await exec.writeAsync(io, p.plan, data));
      });
    },
    advise: async (p, { state }) => {
      // Inside the gate like a read of nothing, so growth, checkpoint and close wait for it.
      const ticket = await state.gate.enter({ reads: [] });
      try {
        return await state.map.adviseClusters(p.first, p.count);
      } finally {
        ticket.leave();
      }
    },
    truncateTail: (p, { state }) => {
      const tail = p.plan.tail;
      if (!tail) return null;
      return ordered(state, writeClaim(tail), async (exec, io) => {
        const crc = await exec.truncateTailAsync(io, p.plan);
        return crc ? new Uint8Array(crc) : null;
      });
    },
    sync: async (_p, { state }) => {
      // Once every earlier write has finished, the fsync covers them all; writes submitted after the
      // sync need not wait for the device (they are not part of this durable point). The second
      // ticket, a read of nothing, keeps checkpoint, growth and close from running under the fsync.
      const writesDone = await state.gate.enter({ barrier: 'writes' });
      const holdFile = state.gate.enter({ reads: [] });
      writesDone.leave();
      const hold = await holdFile;
      try {
        await state.map.syncAsync();
      } finally {
        hold.leave();
      }
      return null;
    },
    checkpoint: async (p, { state }) => {
      // The pass over the blocks written so far and its fsync run alongside writes; the barrier
      // that follows fixes and flushes only what was written meanwhile. A read of nothing keeps
      // growth and close away from the pass.
      const hold = await state.gate.enter({ reads: [] });
      try {
        await state.map.prefixAsync();
      } finally {
        hold.leave();
      }
      return barrier(state, 'all', async () => {
        const payload = Buffer.from(p.metadata.buffer, p.metadata.byteOffset, p.metadata.byteLength);
        await state.map.checkpointAsync({ generation: BigInt(p.generation), payload });
        return info(state.map);
      });
    },
    grow: (p, { state }) =>
      barrier(state, 'all', () => {
        if (p.side > state.map.side) state.map.grow(p.side);
        return info(state.map);
      }),
    info: (_p, { state }) => info(state.map),
    stats: (_p, { state }): SchedulerIoStats => {
      const engine = ioEngine();
      return {
        ioEngine: engine.engine,
        ioUringRefusedErrno: engine.refusedErrno,
        concurrency: CONCURRENCY,
        inFlight: state.inFlight,
        peakInFlight: state.peakInFlight,
        orderedWaits: state.gate.stats().delayed,
        servedInline: state.servedInline,
        executors: state.executors,
      };
    },
  },
  drain(state) {
    state.map.sync();
    state.map.close();
  },
});
