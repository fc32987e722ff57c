/**
 * What the main thread and an actor's worker say to each other, below the Request/Reply envelopes.
 *
 * Two channels per worker, on purpose:
 *   - data: the worker's own port (`worker.postMessage` / `parentPort`) carries Request envelopes one
 *     way and Reply envelopes plus StateReports the other, as raw structured-clone messages. This is
 *     the hot path; every FUSE op crosses it.
 *   - control: a dedicated MessageChannel (`workerData.control`) wrapped by comlink carries the rare
 *     calls (state, stats, setFault, clearFault, drain). Keeping comlink off the data port means its
 *     listener never inspects data messages, and its proxy calls cannot be confused with replies.
 *
 * Liveness is a SharedArrayBuffer word the worker increments every heartbeat interval: no message at
 * all, so checking it costs the supervisor one Atomics.load and a blocked worker simply stops counting.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Reply } from '../../protocol/envelope';
import type { ClusterSlabHandle } from './slab';
import type { FaultSpec, FaultStats } from './faults';

export interface ActorWorkerData {
  readonly actor: string;
  /** Int32 word 0 counts heartbeats. */
  readonly heartbeat: SharedArrayBuffer;
  readonly heartbeatIntervalMs: number;
  readonly control: MessagePort;
  readonly slabs: readonly ClusterSlabHandle[];
  /** A fault to arm before the first message (re-applied by the supervisor after each respawn). */
  readonly fault: FaultSpec | undefined;
  /** Int32 word 0: firings left of `fault`'s count, shared by every worker of the handle (or absent). */
  readonly faultBudget: SharedArrayBuffer | undefined;
  /** The actor's own start options, given to its init. */
  readonly options: unknown;
}

export const HEARTBEAT_WORD = 0;

/** States the worker itself reports; the rest of the lifecycle is decided on the main thread. */
export type ReportedState = 'ready' | 'degraded' | 'failed';

export interface StateReport {
  readonly t: 'state';
  readonly state: ReportedState;
  /** Requests the actor serves at once; the handle keeps at most this many in flight. */
  readonly concurrency: number;
  readonly reason?: string;
}

export type WorkerToMain = Reply | StateReport;

export function isStateReport(message: WorkerToMain): message is StateReport {
  return 't' in message;
}

export interface HostStats {
  readonly actor: string;
  readonly state: ReportedState | 'draining';
  readonly handled: number;
  readonly failed: number;
  readonly inFlight: number;
  readonly backlog: number;
  readonly byOp: Readonly<Record<string, number>>;
  readonly faults: FaultStats;
}

/** Exposed by the worker through comlink on the control port. */
export interface ActorControl {
  state(): ReportedState | 'draining';
  stats(): HostStats;
  setFault(spec: FaultSpec): void;
  clearFault(): void;
  /** Finish what is running, run the actor's drain (flush, close), then resolve; no new work after. */
  drain(): Promise<void>;
}
