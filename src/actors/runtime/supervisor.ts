/**
 * Supervisor: owns every ActorHandle of the daemon, starts them in registration order and stops them
 * in reverse (later actors depend on earlier ones: the front end's cache on the journal, the journal
 * on the scheduler), and is the one place that answers `imapfs stats` and `imapfs debug fault`.
 *
 * Restart, retry and restart-loop protection are per actor and live in ActorHandle and its lifecycle
 * machine; the supervisor adds naming, defaults shared by all actors, and whole-daemon operations.
 *
 * Ownership: main thread. Handles are created and destroyed only here.
 */
import { ImapError } from '../../protocol/errors';
import type { OpMap, OpSpec } from '../../protocol/envelope';
import { ActorHandle, type ActorSpec, type ActorStats, type RequestOptions } from './handle';
import type { FaultSpec } from './faults';

/** Any actor's protocol, for code that routes by name (the CLI, stats). */
export type AnyOps = Record<string, OpSpec>;

export interface SupervisorStats {
  readonly actors: readonly ActorStats[];
  readonly restarts: number;
  readonly inFlight: number;
  readonly queued: number;
}

export class Supervisor {
  private readonly handles = new Map<string, ActorHandle<AnyOps>>();

  /** Defaults merged under every ActorSpec this supervisor receives. */
  constructor(private readonly defaults: Partial<Omit<ActorSpec, 'name' | 'module'>> = {}) {}

  /** Registers an actor; it starts with start() (or at once if the supervisor already runs). */
  add<P extends OpMap<P>>(spec: ActorSpec): ActorHandle<P> {
    if (this.handles.has(spec.name))
      throw new ImapError('IMAP_E_INVALID', `actor ${spec.name} exists already`);
    const handle = new ActorHandle<AnyOps>({ ...this.defaults, ...spec });
    this.handles.set(spec.name, handle);
    return handle as unknown as ActorHandle<P>;
  }

  get<P extends OpMap<P> = AnyOps>(name: string): ActorHandle<P> {
    const handle = this.handles.get(name);
    if (!handle) throw new ImapError('IMAP_E_INVALID', `no actor named ${name}`);
    return handle as unknown as ActorHandle<P>;
  }

  names(): string[] {
    return [...this.handles.keys()];
  }

  /** Starts every actor still in `created`, in registration order. */
  async start(): Promise<void> {
    for (const handle of this.handles.values()) {
      if (handle.state === 'created') await handle.start();
    }
  }

  request(name: string, op: string, payload: unknown, options?: RequestOptions): Promise<unknown> {
    return this.get(name).request(op, payload, options);
  }

  setFault(name: string, spec: FaultSpec): Promise<void> {
    return this.get(name).setFault(spec);
  }

  /** Clears the fault of one actor, or of every running actor. */
  async clearFault(name?: string): Promise<void> {
    if (name !== undefined) return this.get(name).clearFault();
    const running = [...this.handles.values()].filter((h) => h.state === 'ready' || h.state === 'degraded');
    await Promise.all(running.map((handle) => handle.clearFault()));
  }

  stats(): SupervisorStats {
    const actors = [...this.handles.values()].map((handle) => handle.stats());
    const sum = (pick: (stats: ActorStats) => number): number =>
      actors.reduce((total, s) => total + pick(s), 0);
    return {
      actors,
      restarts: sum((s) => s.restarts),
      inFlight: sum((s) => s.inFlight),
      queued: sum((s) => Object.values(s.queue.depth).reduce((a, b) => a + b, 0)),
    };
  }

  /** Drains and stops every actor, the last registered first. */
  async stopAll(): Promise<void> {
    for (const handle of [...this.handles.values()].reverse()) await handle.stop();
  }
}
