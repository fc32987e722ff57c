/**
 * The lifecycle of one actor, as an xstate v5 machine. The main-thread ActorHandle owns the running
 * machine and provides its side effects (spawn, serve, drain, abandon, release); the worker only
 * reports READY / DEGRADE / RECOVER, and the handle turns exits and lost heartbeats into FAIL.
 *
 *                START              READY
 *   created ───────────▶ starting ─────────▶ ready ◀──────────────┐
 *      │                  ▲   │               │ │  DEGRADE         │ RECOVER
 *      │                  │   │ FAIL          │ └──────────▶ degraded
 *      │    after backoff │   ▼          FAIL │                    │ FAIL
 *      │                  │  failed ◀─────────┴────────────────────┘
 *      │                  │   │ fewer than maxRestarts within windowMs: at once
 *      │              restarting ◀┘
 *      │                          otherwise it stays failed (requests fail fast) until RESTART
 *      │
 *      │   STOP from ready/degraded ──▶ draining ── DRAINED or FAIL ──▶ stopped
 *      └── STOP from created/starting/failed/restarting ─────────────▶ stopped (final)
 *
 * Backoff before the k-th restart inside the window: min(maxDelayMs, baseDelayMs × 2^(k−1)).
 * Failures older than windowMs are forgotten, so an actor that has been healthy for a while starts
 * again from the base delay.
 */
import { assign, setup } from 'xstate';
import { monotonicNow } from '../../protocol/clock';

export const LIFECYCLE_STATES = [
  'created',
  'starting',
  'ready',
  'degraded',
  'draining',
  'stopped',
  'failed',
  'restarting',
] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export interface RestartPolicy {
  /** Delay before the first restart in a window; doubles per further restart. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Restarts allowed within `windowMs`; the next failure leaves the actor failed. */
  readonly maxRestarts: number;
  readonly windowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  baseDelayMs: 100,
  maxDelayMs: 5000,
  maxRestarts: 5,
  windowMs: 60_000,
};

export interface LifecycleContext {
  readonly policy: RestartPolicy;
  /** Restarts over the actor's whole life. */
  readonly restarts: number;
  /** When recent restarts happened (monotonic ms), pruned to the window. */
  readonly recentRestarts: readonly number[];
  readonly backoffMs: number;
  readonly lastError: string | undefined;
  readonly degradedReason: string | undefined;
}

export type LifecycleEvent =
  | { readonly type: 'START' }
  | { readonly type: 'READY' }
  | { readonly type: 'DEGRADE'; readonly reason: string }
  | { readonly type: 'RECOVER' }
  | { readonly type: 'FAIL'; readonly reason: string }
  | { readonly type: 'STOP' }
  | { readonly type: 'DRAINED' }
  | { readonly type: 'RESTART' };

function withinWindow(context: LifecycleContext, now: number): readonly number[] {
  return context.recentRestarts.filter((at) => now - at < context.policy.windowMs);
}

const recordFailure = assign<LifecycleContext, LifecycleEvent, undefined, LifecycleEvent, never>({
  lastError: ({ event, context }) => (event.type === 'FAIL' ? event.reason : context.lastError),
});

export const lifecycleMachine = setup({
  types: {
    context: {} as LifecycleContext,
    events: {} as LifecycleEvent,
    input: {} as { readonly policy: RestartPolicy },
  },
  actions: {
    // Side effects, provided by the ActorHandle with `machine.provide(...)`.
    announce: (_, _params: { readonly state: LifecycleState }) => {},
    spawnWorker: () => {},
    serve: () => {},
    beginDrain: () => {},
    abandonWorker: () => {},
    release: () => {},
    recordFailure,
    scheduleRestart: assign(({ context }) => {
      const now = monotonicNow();
      const recent = withinWindow(context, now);
      const backoffMs = Math.min(context.policy.maxDelayMs, context.policy.baseDelayMs * 2 ** recent.length);
      return { restarts: context.restarts + 1, recentRestarts: [...recent, now], backoffMs };
    }),
    forgetRestarts: assign({ recentRestarts: () => [] }),
    noteDegraded: assign({
      degradedReason: ({ event }) => (event.type === 'DEGRADE' ? event.reason : undefined),
    }),
    clearDegraded: assign({ degradedReason: () => undefined }),
  },
  guards: {
    mayRestart: ({ context }) => withinWindow(context, monotonicNow()).length < context.policy.maxRestarts,
  },
  delays: {
    backoff: ({ context }) => context.backoffMs,
  },
}).createMachine({
  id: 'actor-lifecycle',
  initial: 'created',
  context: ({ input }) => ({
    policy: input.policy,
    restarts: 0,
    recentRestarts: [],
    backoffMs: 0,
    lastError: undefined,
    degradedReason: undefined,
  }),
  states: {
    created: {
      on: { START: 'starting', STOP: 'stopped' },
    },
    starting: {
      entry: [{ type: 'announce', params: { state: 'starting' } }, 'spawnWorker'],
      on: {
        READY: 'ready',
        FAIL: { target: 'failed', actions: 'recordFailure' },
        STOP: 'stopped',
      },
    },
    ready: {
      entry: [{ type: 'announce', params: { state: 'ready' } }, 'clearDegraded', 'serve'],
      on: {
        DEGRADE: { target: 'degraded', actions: 'noteDegraded' },
        FAIL: { target: 'failed', actions: 'recordFailure' },
        STOP: 'draining',
      },
    },
    degraded: {
      entry: [{ type: 'announce', params: { state: 'degraded' } }, 'serve'],
      on: {
        RECOVER: 'ready',
        DEGRADE: { actions: 'noteDegraded' },
        FAIL: { target: 'failed', actions: 'recordFailure' },
        STOP: 'draining',
      },
    },
    draining: {
      entry: [{ type: 'announce', params: { state: 'draining' } }, 'beginDrain'],
      on: {
        DRAINED: 'stopped',
        FAIL: { target: 'stopped', actions: 'recordFailure' },
      },
    },
    failed: {
      entry: [{ type: 'announce', params: { state: 'failed' } }, 'abandonWorker'],
      always: { guard: 'mayRestart', target: 'restarting' },
      on: {
        RESTART: { target: 'restarting', actions: 'forgetRestarts' },
        STOP: 'stopped',
      },
    },
    restarting: {
      entry: [{ type: 'announce', params: { state: 'restarting' } }, 'scheduleRestart'],
      after: { backoff: 'starting' },
      on: { STOP: 'stopped' },
    },
    stopped: {
      type: 'final',
      entry: [{ type: 'announce', params: { state: 'stopped' } }, 'release'],
    },
  },
});

export type LifecycleMachine = typeof lifecycleMachine;
