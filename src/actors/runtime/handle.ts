/**
 * ActorHandle: the main-thread side of one actor. It owns the actor's lifecycle machine
 * (lifecycle.ts), its bounded RequestQueue (src/protocol/queue.ts), its worker thread and the table
 * of requests in flight, and it is the only code that talks to that worker.
 *
 * Request path: request() → queue (priority, fair share, EDF, bounded) → at most `concurrency`
 * (declared by the actor) in flight → worker → reply → promise settled. Nothing else is buffered.
 *
 * Failure: a worker that exits, throws, fails init, misses its start timeout or stops heartbeating
 * makes the machine go failed → restarting → starting. At that moment every request in flight is
 * settled: an idempotent one goes back to the front of the line and is retried on the new worker (at
 * most `maxAttempts` deliveries), any other is rejected with IMAP_E_ACTOR_FAILED (EIO). Queued
 * requests simply wait for the new worker. When the restart budget is spent, the actor stays failed
 * and all queued and new requests fail fast with IMAP_E_ACTOR_FAILED. No request is ever dropped
 * without its promise being settled.
 *
 * Ownership: all fields are owned by the main thread's event loop; a worker generation counter makes
 * events from a worker we have already abandoned harmless.
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/umd/node-adapter';
import { createActor, waitFor, type Actor } from 'xstate';
import { ImapError } from '../../protocol/errors';
import { monotonicNow } from '../../protocol/clock';
import { newTraceparent } from '../../protocol/trace';
import {
  DAEMON_CALLER,
  PRIORITY_RANK,
  deserializeError,
  type Caller,
  type OpMap,
  type OpName,
  type PayloadOf,
  type PriorityClass,
  type Reply,
  type Request,
  type ResultOf,
  type SlotRef,
} from '../../protocol/envelope';
import { RequestQueue, type PerClass, type QueueLimits, type QueueStats } from '../../protocol/queue';
import {
  DEFAULT_RESTART_POLICY,
  lifecycleMachine,
  type LifecycleState,
  type RestartPolicy,
} from './lifecycle';
import { spawnActorWorker } from './spawn';
import { validateFaultSpec, type FaultSpec } from './faults';
import type { ClusterSlab } from './slab';
import {
  isStateReport,
  type ActorControl,
  type ActorWorkerData,
  type HostStats,
  type WorkerToMain,
  HEARTBEAT_WORD,
} from './wire';

export interface HeartbeatPolicy {
  /** How often the worker bumps its heartbeat word. */
  readonly intervalMs: number;
  /** No beat for this long means the worker is hung: it is killed and restarted. */
  readonly timeoutMs: number;
}

export const DEFAULT_HEARTBEAT: HeartbeatPolicy = { intervalMs: 100, timeoutMs: 2000 };

/** Relative deadline given to a request that names none. */
export const DEFAULT_DEADLINE_MS: PerClass<number> = {
  metadata: 100,
  interactive: 500,
  fsync: 5000,
  background: 60_000,
};

export interface ActorSpec {
  readonly name: string;
  /** Absolute path of the worker module without extension, e.g. path.join(__dirname, 'journal.worker'). */
  readonly module: string;
  /** Given to the actor's init as `options`; must be structured-cloneable. */
  readonly options?: unknown;
  readonly queue?: Partial<QueueLimits>;
  readonly restart?: Partial<RestartPolicy>;
  readonly heartbeat?: Partial<HeartbeatPolicy>;
  /** Worker start (module load + init) must finish within this; tsx compiles on first load. */
  readonly startTimeoutMs?: number;
  /** How long stop() waits for queued and in-flight work and the actor's drain. */
  readonly drainTimeoutMs?: number;
  /** Limit for control calls (stats, setFault, ...). */
  readonly controlTimeoutMs?: number;
  /** Deliveries of an idempotent request across worker crashes, the first included. */
  readonly maxAttempts?: number;
  readonly defaultDeadlineMs?: Partial<PerClass<number>>;
  /** Slabs the worker may resolve SlotRefs in. */
  readonly slabs?: readonly ClusterSlab[];
  /**
   * A fault armed in every worker this handle starts (e.g. to test restart-loop protection, or a
   * crash at the journal's recovery). Its `count` is shared by all those workers: `count: 1` fires
   * once in all, so the request retried on the next worker goes through.
   */
  readonly fault?: FaultSpec;
}

export interface RequestOptions {
  /** Default: interactive. */
  readonly priority?: PriorityClass;
  /** Absolute ms on monotonicNow()'s clock. Default: now + the class's default deadline. */
  readonly deadline?: number;
  /** Default: the daemon itself. */
  readonly caller?: Caller;
  /** W3C traceparent of the caller's span. Default: a new trace. */
  readonly trace?: string;
  /** May be delivered again after a worker crash. Default false: such a request fails with EIO instead. */
  readonly idempotent?: boolean;
  readonly data?: SlotRef;
  /** Overrides the queue's admission wait for this request. */
  readonly admitTimeoutMs?: number;
}

export interface ActorStats {
  readonly name: string;
  readonly state: LifecycleState;
  readonly restarts: number;
  readonly lastError: string | undefined;
  readonly degradedReason: string | undefined;
  readonly inFlight: number;
  /** Idempotent requests waiting to be delivered again after a crash. */
  readonly retrying: number;
  /** In-flight limit the actor declared. */
  readonly concurrency: number;
  readonly queue: QueueStats;
  readonly completed: number;
  /** Replies that were errors (the actor's own, or injected). */
  readonly errorReplies: number;
  /** Idempotent requests re-delivered after a crash. */
  readonly retried: number;
  /** Requests answered IMAP_E_ACTOR_FAILED because their worker died or the actor gave up. */
  readonly failedByActor: number;
  /** Replies that arrived after the request's deadline (served late, never dropped). */
  readonly answeredLate: number;
}

interface PendingRequest {
  readonly id: number;
  readonly op: string;
  readonly payload: unknown;
  readonly priority: PriorityClass;
  readonly deadline: number;
  readonly caller: Caller;
  readonly trace: string;
  readonly data: SlotRef | undefined;
  readonly idempotent: boolean;
  attempt: number;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: ImapError) => void;
}

type StateListener = (state: LifecycleState) => void;

export class ActorHandle<P extends OpMap<P>> {
  readonly name: string;
  private readonly spec: ActorSpec;
  private readonly heartbeatPolicy: HeartbeatPolicy;
  private readonly deadlines: PerClass<number>;
  private readonly maxAttempts: number;
  private readonly lifecycle: Actor<typeof lifecycleMachine>;
  private readonly queue: RequestQueue<PendingRequest>;
  private readonly inFlight = new Map<number, PendingRequest>();
  private readonly retryLine: PendingRequest[] = [];
  private readonly listeners = new Set<StateListener>();
  private current: LifecycleState = 'created';
  private gaveUp = false;
  private nextId = 1;
  private concurrency = 1;

  // The live worker, if any. `generation` changes whenever we spawn or abandon one.
  private generation = 0;
  private worker: Worker | undefined;
  private controlPort: MessagePort | undefined;
  private control: Comlink.Remote<ActorControl> | undefined;
  private heartbeat: Int32Array | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private startTimer: NodeJS.Timeout | undefined;
  private exitDetail: string | undefined;
  private failure = 'unknown';
  private idleWaiter: (() => void) | undefined;
  /** Firings left of spec.fault's count, shared with every worker (see faults.ts). */
  private readonly faultBudget: SharedArrayBuffer | undefined;

  private completed = 0;
  private errorReplies = 0;
  private retried = 0;
  private failedByActor = 0;
  private answeredLate = 0;

  constructor(spec: ActorSpec) {
    this.name = spec.name;
    this.spec = spec;
    this.heartbeatPolicy = { ...DEFAULT_HEARTBEAT, ...spec.heartbeat };
    this.deadlines = { ...DEFAULT_DEADLINE_MS, ...spec.defaultDeadlineMs };
    this.maxAttempts = spec.maxAttempts ?? 3;
    if (spec.fault) validateFaultSpec(spec.fault);
    if (spec.fault?.count !== undefined) {
      this.faultBudget = new SharedArrayBuffer(4);
      Atomics.store(new Int32Array(this.faultBudget), 0, spec.fault.count);
    }
    this.queue = new RequestQueue<PendingRequest>(spec.queue, {
      onShed: (pending, error) => pending.reject(error),
    });
    const machine = lifecycleMachine.provide({
      actions: {
        announce: (_, params) => this.announce(params.state),
        spawnWorker: () => this.spawnWorker(),
        serve: () => this.pump(),
        beginDrain: () => void this.drainWorker(),
        abandonWorker: () => this.abandonWorker(),
        release: () => this.release(),
      },
    });
    this.lifecycle = createActor(machine, {
      input: { policy: { ...DEFAULT_RESTART_POLICY, ...spec.restart } },
    });
    // Subscribers see the state a macrostep settles in: 'failed' there means the guard refused a restart.
    this.lifecycle.subscribe((snapshot) => {
      if (snapshot.value === 'failed' && !this.gaveUp) this.giveUp();
    });
    this.lifecycle.start();
  }

  get state(): LifecycleState {
    return this.current;
  }

  /**
   * Why the last worker failed, known as soon as the handle decides it (stats().lastError is the
   * lifecycle's copy, updated only once the transition to `failed` has settled).
   */
  get lastFailure(): string {
    return this.failure;
  }

  /** Starts the worker and resolves once it is ready; rejects if the actor gives up starting. */
  async start(): Promise<void> {
    this.lifecycle.send({ type: 'START' });
    const settled = await waitFor(this.lifecycle, (snapshot) =>
      ['ready', 'degraded', 'failed', 'stopped'].includes(snapshot.value),
    );
    if (settled.value === 'failed' || settled.value === 'stopped') {
      throw new ImapError('IMAP_E_ACTOR_FAILED', `actor ${this.name} did not start: ${this.failure}`);
    }
  }

  /**
   * Sends one request and resolves with the actor's result, or rejects with an ImapError: the
   * actor's own, IMAP_E_OVERLOADED (no room in the queue), IMAP_E_ACTOR_FAILED (the worker died with
   * the request in flight, or the actor gave up) or IMAP_E_ACTOR_STOPPED (shutting down).
   */
  request<K extends OpName<P>>(
    op: K,
    payload: PayloadOf<P, K>,
    options: RequestOptions = {},
  ): Promise<ResultOf<P, K>> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    const priority = options.priority ?? 'interactive';
    return new Promise<ResultOf<P, K>>((resolve, reject) => {
      const pending: PendingRequest = {
        id: this.nextId++,
        op,
        payload,
        priority,
        deadline: options.deadline ?? monotonicNow() + this.deadlines[priority],
        caller: options.caller ?? DAEMON_CALLER,
        trace: options.trace ?? newTraceparent(),
        data: options.data,
        idempotent: options.idempotent ?? false,
        attempt: 0,
        resolve: resolve as (result: unknown) => void,
        reject,
      };
      if (this.queue.tryEnqueue(pending)) {
        this.pump();
        return;
      }
      this.queue.enqueue(pending, options.admitTimeoutMs).then(() => this.pump(), reject);
    });
  }

  /** Arms a fault in the running worker (see faults.ts). */
  async setFault(spec: FaultSpec): Promise<void> {
    const valid = validateFaultSpec(spec);
    await this.callControl('setFault', (control) => control.setFault(valid));
  }

  async clearFault(): Promise<void> {
    await this.callControl('clearFault', (control) => control.clearFault());
  }

  /** The worker's own counters (handled per op, faults fired). */
  hostStats(): Promise<HostStats> {
    return this.callControl('stats', (control) => control.stats());
  }

  /** Leaves the gave-up `failed` state: a fresh restart budget, as after an operator's fix. */
  restart(): void {
    this.gaveUp = false;
    this.lifecycle.send({ type: 'RESTART' });
  }

  /** Serves what is queued, drains the actor, stops its worker. Idempotent. */
  async stop(): Promise<void> {
    this.lifecycle.send({ type: 'STOP' });
    await waitFor(this.lifecycle, (snapshot) => snapshot.status === 'done');
  }

  /** Called with every state entered, transient ones (failed before restarting) included. */
  onStateChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): ActorStats {
    const { context } = this.lifecycle.getSnapshot();
    return {
      name: this.name,
      state: this.current,
      restarts: context.restarts,
      lastError: context.lastError,
      degradedReason: context.degradedReason,
      inFlight: this.inFlight.size,
      retrying: this.retryLine.length,
      concurrency: this.concurrency,
      queue: this.queue.stats(),
      completed: this.completed,
      errorReplies: this.errorReplies,
      retried: this.retried,
      failedByActor: this.failedByActor,
      answeredLate: this.answeredLate,
    };
  }

  private refusal(): ImapError | undefined {
    if (this.current === 'draining' || this.current === 'stopped') {
      return new ImapError('IMAP_E_ACTOR_STOPPED', `actor ${this.name} is ${this.current}`);
    }
    if (this.gaveUp) return this.gaveUpError();
    return undefined;
  }

  private gaveUpError(): ImapError {
    const { policy } = this.lifecycle.getSnapshot().context;
    return new ImapError(
      'IMAP_E_ACTOR_FAILED',
      `actor ${this.name} gave up after ${policy.maxRestarts} restarts within ${policy.windowMs} ms; last failure: ${this.failure}`,
    );
  }

  private announce(state: LifecycleState): void {
    this.current = state;
    for (const listener of this.listeners) listener(state);
  }

  private fail(reason: string): void {
    this.failure = reason;
    this.lifecycle.send({ type: 'FAIL', reason });
  }

  // ── worker ────────────────────────────────────────────────────────────────────────────────────

  private spawnWorker(): void {
    const generation = ++this.generation;
    const heartbeat = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    const workerData: ActorWorkerData = {
      actor: this.name,
      heartbeat,
      heartbeatIntervalMs: this.heartbeatPolicy.intervalMs,
      control: port2,
      slabs: (this.spec.slabs ?? []).map((slab) => slab.handle()),
      fault: this.spec.fault,
      faultBudget: this.faultBudget,
      options: this.spec.options,
    };
    let worker: Worker;
    try {
      worker = spawnActorWorker(this.spec.module, {
        name: `imapfs:${this.name}`,
        workerData,
        transferList: [port2],
      });
    } catch (err) {
      port1.close();
      this.fail(`cannot start worker: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    this.worker = worker;
    this.controlPort = port1;
    this.control = Comlink.wrap<ActorControl>(nodeEndpoint(port1));
    this.heartbeat = new Int32Array(heartbeat);
    this.exitDetail = undefined;
    worker.on('message', (message: WorkerToMain) => {
      if (generation === this.generation) this.onWorkerMessage(message);
    });
    worker.on('error', (err: Error) => {
      if (generation === this.generation) this.exitDetail = `${err.name}: ${err.message}`;
    });
    worker.on('exit', (code: number) => {
      if (generation !== this.generation) return;
      this.fail(`worker exited with code ${code}${this.exitDetail ? ` (${this.exitDetail})` : ''}`);
    });
    const startTimeoutMs = this.spec.startTimeoutMs ?? 15_000;
    this.startTimer = setTimeout(() => {
      if (generation === this.generation) this.fail(`worker not ready within ${startTimeoutMs} ms`);
    }, startTimeoutMs);
  }

  private onWorkerMessage(message: WorkerToMain): void {
    if (!isStateReport(message)) {
      this.onReply(message);
      return;
    }
    switch (message.state) {
      case 'ready':
        this.concurrency = message.concurrency;
        if (this.current === 'starting') {
          clearTimeout(this.startTimer);
          this.watchHeartbeat();
          this.lifecycle.send({ type: 'READY' });
        } else {
          this.lifecycle.send({ type: 'RECOVER' });
        }
        break;
      case 'degraded':
        this.lifecycle.send({ type: 'DEGRADE', reason: message.reason ?? 'reported by the actor' });
        break;
      case 'failed':
        // The exit that follows carries this as its explanation.
        this.exitDetail = message.reason;
        break;
    }
  }

  private watchHeartbeat(): void {
    const beats = this.heartbeat;
    if (!beats) return;
    const { intervalMs, timeoutMs } = this.heartbeatPolicy;
    let lastBeat = Atomics.load(beats, HEARTBEAT_WORD);
    let lastBeatAt = monotonicNow();
    this.heartbeatTimer = setInterval(
      () => {
        const beat = Atomics.load(beats, HEARTBEAT_WORD);
        const now = monotonicNow();
        if (beat !== lastBeat) {
          lastBeat = beat;
          lastBeatAt = now;
        } else if (now - lastBeatAt > timeoutMs) {
          clearInterval(this.heartbeatTimer);
          this.fail(`no heartbeat for ${Math.round(now - lastBeatAt)} ms: worker hung`);
        }
      },
      Math.max(10, Math.min(intervalMs, timeoutMs / 4)),
    );
    this.heartbeatTimer.unref();
  }

  /** Forgets the current worker: no more events from it count, and it is terminated. */
  private dropWorker(): void {
    clearTimeout(this.startTimer);
    clearInterval(this.heartbeatTimer);
    this.generation++;
    const worker = this.worker;
    this.worker = undefined;
    this.heartbeat = undefined;
    if (this.control) this.control[Comlink.releaseProxy]();
    this.control = undefined;
    this.controlPort?.close();
    this.controlPort = undefined;
    // terminate() also ends a thread blocked in Atomics.wait (V8 wakes it to deliver the termination).
    if (worker) void worker.terminate();
  }

  // ── requests ──────────────────────────────────────────────────────────────────────────────────

  private pump(): void {
    const serving = this.current === 'ready' || this.current === 'degraded' || this.current === 'draining';
    if (!serving || !this.worker) return;
    while (this.inFlight.size < this.concurrency) {
      const next = this.retryLine.shift() ?? this.queue.dequeue();
      if (!next) break;
      this.dispatch(next);
    }
    if (this.idleWaiter && this.isIdle()) this.idleWaiter();
  }

  private dispatch(pending: PendingRequest): void {
    pending.attempt++;
    const envelope: Request = {
      id: pending.id,
      op: pending.op,
      priority: pending.priority,
      deadline: pending.deadline,
      caller: pending.caller,
      trace: pending.trace,
      payload: pending.payload,
      attempt: pending.attempt,
      ...(pending.data ? { data: pending.data } : {}),
    };
    this.inFlight.set(pending.id, pending);
    try {
      (this.worker as Worker).postMessage(envelope);
    } catch (err) {
      this.inFlight.delete(pending.id);
      this.queue.release(pending);
      const why = err instanceof Error ? err.message : String(err);
      pending.reject(
        new ImapError('IMAP_E_INVALID', `payload of ${pending.op} cannot cross to a worker: ${why}`),
      );
    }
  }

  private onReply(reply: Reply): void {
    const pending = this.inFlight.get(reply.id);
    if (!pending) return;
    this.inFlight.delete(reply.id);
    this.queue.release(pending);
    if (monotonicNow() > pending.deadline) this.answeredLate++;
    if (reply.ok) {
      this.completed++;
      pending.resolve(reply.result);
    } else {
      this.errorReplies++;
      pending.reject(deserializeError(reply.error));
    }
    this.pump();
  }

  /** `dequeued`: the request left the queue (in flight or retrying), so its in-flight limits free up. */
  private rejectAsFailed(pending: PendingRequest, why: string, dequeued = true): void {
    this.failedByActor++;
    if (dequeued) this.queue.release(pending);
    pending.reject(new ImapError('IMAP_E_ACTOR_FAILED', `actor ${this.name}: ${why}`));
  }

  // ── lifecycle effects ─────────────────────────────────────────────────────────────────────────

  /** Entry of `failed`: the worker is gone; settle everything it held. */
  private abandonWorker(): void {
    this.dropWorker();
    for (const pending of this.inFlight.values()) {
      if (pending.idempotent && pending.attempt < this.maxAttempts) {
        this.retried++;
        this.retryLine.push(pending);
      } else {
        const why = pending.idempotent
          ? `${pending.op} failed on ${pending.attempt} workers`
          : `${pending.op} was in flight and is not idempotent`;
        this.rejectAsFailed(pending, `${this.failure}; ${why}`);
      }
    }
    this.inFlight.clear();
    // Retries keep their place: highest class first, then earliest deadline.
    this.retryLine.sort(
      (a, b) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || a.deadline - b.deadline,
    );
  }

  /** The restart budget is spent: everything waiting fails now, and so will new requests. */
  private giveUp(): void {
    this.gaveUp = true;
    const error = this.gaveUpError();
    for (const pending of this.retryLine.splice(0))
      this.rejectAsFailed(pending, error.detail ?? error.message);
    for (const pending of this.queue.drainAll(error))
      this.rejectAsFailed(pending, error.detail ?? error.message, false);
  }

  private isIdle(): boolean {
    return this.queue.size === 0 && this.retryLine.length === 0 && this.inFlight.size === 0;
  }

  /** Entry of `draining`: serve what was accepted, let the actor flush, then stop. */
  private async drainWorker(): Promise<void> {
    const generation = this.generation;
    const drainTimeoutMs = this.spec.drainTimeoutMs ?? 10_000;
    const giveUpAt = monotonicNow() + drainTimeoutMs;
    try {
      this.pump();
      if (!this.isIdle()) {
        await withTimeout(
          new Promise<void>((resolve) => (this.idleWaiter = resolve)),
          drainTimeoutMs,
          `actor ${this.name}: queued work not finished within ${drainTimeoutMs} ms`,
        );
      }
      this.idleWaiter = undefined;
      const control = this.control;
      if (control && generation === this.generation) {
        const left = Math.max(1, giveUpAt - monotonicNow());
        await withTimeout(
          control.drain(),
          left,
          `actor ${this.name}: drain did not finish within ${drainTimeoutMs} ms`,
        );
      }
    } catch (err) {
      // Stopping goes on regardless; what is still pending is answered by release().
      this.failure = err instanceof Error ? err.message : String(err);
    }
    this.idleWaiter = undefined;
    if (generation === this.generation) this.lifecycle.send({ type: 'DRAINED' });
  }

  /** Entry of `stopped` (final). */
  private release(): void {
    this.dropWorker();
    const error = new ImapError('IMAP_E_ACTOR_STOPPED', `actor ${this.name} stopped`);
    for (const pending of [...this.inFlight.values(), ...this.retryLine.splice(0)]) {
      this.queue.release(pending);
      pending.reject(error);
    }
    this.inFlight.clear();
    for (const pending of this.queue.drainAll(error)) pending.reject(error);
  }

  private async callControl<T>(
    what: string,
    call: (control: Comlink.Remote<ActorControl>) => Promise<T>,
  ): Promise<T> {
    const control = this.control;
    if (!control || !(this.current === 'ready' || this.current === 'degraded')) {
      throw new ImapError('IMAP_E_ACTOR_FAILED', `actor ${this.name} is ${this.current}; cannot ${what}`);
    }
    const timeoutMs = this.spec.controlTimeoutMs ?? 5000;
    try {
      return await withTimeout(
        call(control),
        timeoutMs,
        `actor ${this.name}: ${what} got no answer in ${timeoutMs} ms`,
      );
    } catch (err) {
      if (err instanceof ImapError) throw err;
      throw new ImapError(
        'IMAP_E_INVALID',
        `actor ${this.name}: ${what}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new ImapError('IMAP_E_TIMEOUT', message)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
