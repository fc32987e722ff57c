/**
 * The worker side of an actor: `runActor({ name, init, handlers, drain })` is the whole main function
 * of an actor's `X.worker.ts`. It runs the message loop, calls the typed handler per op with at most
 * `concurrency` requests at once, answers with the result or a serialized ImapError, counts heartbeats,
 * and applies injected faults (faults.ts) before a message reaches its handler.
 *
 * Ownership: everything here belongs to the worker thread. The actor's state `S` (what init returns)
 * is touched only by its handlers, in this thread. Slot bytes named by a request's SlotRef belong to
 * the handler for the duration of the request.
 *
 * The worker reports `ready` (after init), `degraded`/`ready` (when the actor says so) and `failed`
 * (init threw); the main-thread lifecycle machine (lifecycle.ts) decides everything else.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/umd/node-adapter';
import { ImapError } from '../../protocol/errors';
import {
  serializeError,
  type OpMap,
  type OpName,
  type PayloadOf,
  type Reply,
  type Request,
  type ResultOf,
} from '../../protocol/envelope';
import { FaultInjector, validateFaultSpec, type FaultSpec } from './faults';
import { SlabSet } from './slab';
import {
  HEARTBEAT_WORD,
  type ActorControl,
  type ActorWorkerData,
  type HostStats,
  type ReportedState,
  type StateReport,
  type WorkerToMain,
} from './wire';

export interface InitContext {
  readonly actor: string;
  /** The actor's start options (ActorSpec.options), as given. */
  readonly options: unknown;
  readonly slabs: SlabSet;
}

export interface ActorContext<S> {
  readonly actor: string;
  readonly state: S;
  /** The envelope being served: deadline, caller, trace, attempt, data. */
  readonly request: Request;
  readonly slabs: SlabSet;
  /** Tell the supervisor the actor works but is impaired (e.g. its disk is slow); it stays in service. */
  setDegraded(reason: string): void;
  /** Back to full service after setDegraded. */
  setReady(): void;
  /**
   * Counts a heartbeat now. The heartbeat timer cannot fire while a handler runs synchronously, so a
   * handler in a long synchronous job (the journal's recovery scans the whole map) calls this between
   * steps; otherwise the supervisor would take the busy worker for a hung one and kill it.
   */
  keepAlive(): void;
}

export type ActorHandlers<P extends OpMap<P>, S> = {
  readonly [K in OpName<P>]: (
    payload: PayloadOf<P, K>,
    context: ActorContext<S>,
  ) => ResultOf<P, K> | Promise<ResultOf<P, K>>;
};

export interface ActorDefinition<P extends OpMap<P>, S> {
  readonly name: string;
  /** Requests served at once. 1 (the default) makes the actor a strict serial loop. */
  readonly concurrency?: number;
  readonly init: (context: InitContext) => S | Promise<S>;
  readonly handlers: ActorHandlers<P, S>;
  /** Flush and close before the worker stops; runs after the last request has been answered. */
  readonly drain?: (state: S) => void | Promise<void>;
}

/** Thrown out of the message loop by a `crash` fault; nothing catches it, so the worker dies. */
class InjectedCrash extends Error {
  override readonly name = 'InjectedCrash';
}

export function runActor<P extends OpMap<P>, S>(definition: ActorDefinition<P, S>): void {
  if (isMainThread || !parentPort) {
    throw new Error(`actor ${definition.name}: runActor must be called in a worker thread`);
  }
  void new ActorHost(definition, parentPort, workerData as ActorWorkerData).start();
}

type AnyHandler<S> = (payload: unknown, context: ActorContext<S>) => unknown;

class ActorHost<P extends OpMap<P>, S> {
  private readonly concurrency: number;
  private readonly faults = new FaultInjector();
  private readonly slabs: SlabSet;
  private readonly byOp: Record<string, number> = {};
  private readonly backlog: Array<{
    readonly request: Request;
    readonly delayMs: number;
    readonly crashAfter: boolean;
  }> = [];
  /** A `crash-after` fault fired: nothing more is served or answered before the worker dies. */
  private dying = false;
  private state: S | undefined;
  private reported: ReportedState | 'draining' = 'ready';
  private active = 0;
  private handled = 0;
  private failed = 0;
  private whenIdle: (() => void) | undefined;
  private readonly beats: Int32Array;

  constructor(
    private readonly definition: ActorDefinition<P, S>,
    private readonly port: MessagePort,
    private readonly data: ActorWorkerData,
  ) {
    this.concurrency = Math.max(1, definition.concurrency ?? 1);
    this.slabs = SlabSet.attach(data.slabs);
    this.beats = new Int32Array(data.heartbeat);
    if (data.fault) {
      this.faults.set(data.fault, data.faultBudget ? new Int32Array(data.faultBudget) : undefined);
    }
  }

  async start(): Promise<void> {
    this.startHeartbeat();
    Comlink.expose(this.controlApi(), nodeEndpoint(this.data.control));
    try {
      this.state = await this.definition.init({
        actor: this.data.actor,
        options: this.data.options,
        slabs: this.slabs,
      });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.report('failed', `init failed: ${reason}`);
      // Let the report leave before the thread goes; exit code 1 tells the supervisor it was a failure.
      setImmediate(() => process.exit(1));
      return;
    }
    this.port.on('message', (request: Request) => this.receive(request));
    this.report('ready');
  }

  private startHeartbeat(): void {
    const beats = this.beats;
    Atomics.add(beats, HEARTBEAT_WORD, 1);
    // unref: the data port keeps the worker alive, the heartbeat must not keep a finished one alive.
    setInterval(() => Atomics.add(beats, HEARTBEAT_WORD, 1), this.data.heartbeatIntervalMs).unref();
  }

  private receive(request: Request): void {
    if (this.dying) return;
    // Faults are decided here, synchronously in the port listener, so that `crash` throws straight
    // out of the event loop (an uncaught exception, as a real bug would) and `hang` blocks it.
    const fault = this.faults.decide(request.op);
    if (fault?.mode === 'crash') {
      throw new InjectedCrash(`injected crash in actor ${this.data.actor}, op ${request.op}`);
    }
    if (fault?.mode === 'hang') {
      // Blocks this thread for good: no replies, no heartbeats, no control calls. Only the
      // supervisor's heartbeat check and worker.terminate() end it, as with a real deadlock.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      return;
    }
    if (fault?.mode === 'error') {
      this.failed++;
      this.send({ id: request.id, ok: false, error: serializeError(fault.error) });
      return;
    }
    const delayMs = fault?.mode === 'delay' ? fault.delayMs : 0;
    const crashAfter = fault?.mode === 'crash-after';
    if (this.active >= this.concurrency) {
      // The handle never sends more than `concurrency` at once; this only absorbs a reply/request
      // crossing, so a plain FIFO is enough (the main-side queue already ordered these).
      this.backlog.push({ request, delayMs, crashAfter });
      return;
    }
    void this.serve(request, delayMs, crashAfter);
  }

  private async serve(request: Request, delayMs: number, crashAfter = false): Promise<void> {
    this.active++;
    try {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const handler = (this.definition.handlers as unknown as Record<string, AnyHandler<S> | undefined>)[
        request.op
      ];
      if (!handler)
        throw new ImapError('IMAP_E_NOT_SUPPORTED', `actor ${this.data.actor} has no op ${request.op}`);
      const result = await handler(request.payload, this.contextFor(request));
      if (crashAfter) {
        // Out of the event loop, as an uncaught exception: the op is done, its reply never leaves.
        this.dying = true;
        process.nextTick(() => {
          throw new InjectedCrash(`injected crash after op ${request.op} in actor ${this.data.actor}`);
        });
        return;
      }
      this.byOp[request.op] = (this.byOp[request.op] ?? 0) + 1;
      this.handled++;
      this.send({ id: request.id, ok: true, result });
    } catch (err) {
      this.failed++;
      this.send({ id: request.id, ok: false, error: serializeError(err) });
    } finally {
      this.active--;
      const next = this.dying ? undefined : this.backlog.shift();
      if (next) void this.serve(next.request, next.delayMs, next.crashAfter);
      else if (this.active === 0) this.whenIdle?.();
    }
  }

  private contextFor(request: Request): ActorContext<S> {
    return {
      actor: this.data.actor,
      state: this.state as S,
      request,
      slabs: this.slabs,
      setDegraded: (reason) => this.report('degraded', reason),
      setReady: () => this.report('ready'),
      keepAlive: () => void Atomics.add(this.beats, HEARTBEAT_WORD, 1),
    };
  }

  private send(reply: Reply): void {
    try {
      this.port.postMessage(reply satisfies WorkerToMain);
    } catch (err) {
      // A result that cannot be cloned (a function, a class with private state) is a handler bug.
      const why = err instanceof Error ? err.message : String(err);
      const error = serializeError(
        new ImapError('IMAP_E_INTERNAL', `reply to ${reply.id} not sendable: ${why}`),
      );
      this.port.postMessage({ id: reply.id, ok: false, error } satisfies WorkerToMain);
    }
  }

  private report(state: ReportedState, reason?: string): void {
    if (this.reported === 'draining' && state !== 'failed') return;
    this.reported = state;
    const report: StateReport = {
      t: 'state',
      state,
      concurrency: this.concurrency,
      ...(reason ? { reason } : {}),
    };
    this.port.postMessage(report satisfies WorkerToMain);
  }

  private stats(): HostStats {
    return {
      actor: this.data.actor,
      state: this.reported,
      handled: this.handled,
      failed: this.failed,
      inFlight: this.active,
      backlog: this.backlog.length,
      byOp: { ...this.byOp },
      faults: this.faults.stats(),
    };
  }

  private controlApi(): ActorControl {
    return {
      state: () => this.reported,
      stats: () => this.stats(),
      setFault: (spec: FaultSpec) => this.faults.set(validateFaultSpec(spec)),
      clearFault: () => this.faults.clear(),
      drain: async () => {
        this.reported = 'draining';
        if (this.active > 0 || this.backlog.length > 0) {
          await new Promise<void>((resolve) => (this.whenIdle = resolve));
        }
        if (this.state !== undefined) await this.definition.drain?.(this.state);
      },
    };
  }
}
