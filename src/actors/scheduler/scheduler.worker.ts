/**
 * The scheduler actor: owns the map file. Every cluster read and write, the container checkpoint and
 * growth happen here, so the PNG has exactly one writer.
 *
 *   lifecycle: see runtime/lifecycle.ts (created → starting → ready ⇄ degraded → draining → stopped)
 *
 * Ownership: the MapContainer and the PlanExecutor's scratch buffers belong to this thread. A request's
 * slot (SlotRef) belongs to the handler until it replies. Requests arrive already ordered by the
 * front end's priority queue (ActorHandle); here they run one at a time, so writes to the same
 * cluster apply in submission order.
 */
import { MapContainer } from '../../map';
import { PlanExecutor } from '../../fs/plan-executor';
import { ImapError } from '../../protocol/errors';
import type { MapInfo, SchedulerOps } from '../../protocol/scheduler';
import { runActor, type ActorContext } from '../runtime/host';

export interface SchedulerOptions {
  mapPath: string;
  readOnly: boolean;
  /** Added to every map I/O: a slow device for tests and benchmarks. */
  ioDelayMs: number;
}

interface SchedulerState {
  map: MapContainer;
  exec: PlanExecutor;
  ioDelayMs: number;
}

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

async function simulatedLatency(state: SchedulerState): Promise<void> {
  if (state.ioDelayMs > 0) await new Promise((r) => setTimeout(r, state.ioDelayMs));
}

runActor<SchedulerOps, SchedulerState>({
  name: 'scheduler',
  init({ options }) {
    const o = options as SchedulerOptions;
    const map = MapContainer.open(o.mapPath, { readOnly: o.readOnly });
    // The daemon repaired the container before starting actors; a dirty map here means a restarted
    // scheduler after a crash mid-write: repair again so checksums match what is on disk.
    if (map.needsRecovery && !o.readOnly) map.repairChecksums();
    const state: SchedulerState = {
      map,
      exec: new PlanExecutor({
        read: (first, count, out, off) => map.readClusters(first, count, out, off),
        write: (first, data, off, count) => map.writeClusters(first, data, off, count),
      }),
      ioDelayMs: o.ioDelayMs,
    };
    return state;
  },
  handlers: {
    read: async (p, ctx) => {
      await simulatedLatency(ctx.state);
      return ctx.state.exec.read(p.plan, slotOf(ctx), 0);
    },
    write: async (p, ctx) => {
      await simulatedLatency(ctx.state);
      return new Uint8Array(ctx.state.exec.write(p.plan, slotOf(ctx)));
    },
    truncateTail: (p, { state }) => {
      const crc = state.exec.truncateTail(p.plan);
      return crc ? new Uint8Array(crc) : null;
    },
    sync: (_p, { state }) => {
      state.map.sync();
      return null;
    },
    checkpoint: (p, { state }) => {
      const payload = Buffer.from(p.metadata.buffer, p.metadata.byteOffset, p.metadata.byteLength);
      state.map.checkpoint({ generation: BigInt(p.generation), payload });
      return info(state.map);
    },
    grow: (p, { state }) => {
      if (p.side > state.map.side) state.map.grow(p.side);
      return info(state.map);
    },
    info: (_p, { state }) => info(state.map),
  },
  drain(state) {
    state.map.sync();
    state.map.close();
  },
});
