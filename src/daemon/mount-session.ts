/**
 * One mounted map: the open flow (recovery, sidecar check), the actors, the FUSE session, periodic
 * checkpoints, and the orderly end (drain → checkpoint → release).
 *
 *   start ─▶ map lock ─▶ journal actor ─▶ journal.recover (open & recover, in the journal's thread;
 *           a crash or hang there is retried on a new worker, at most 3 deliveries, then the mount
 *           fails with IMAP_E_RECOVERY_FAILED) ─▶ the other actors ─▶ FUSE mounted ─▶ serving
 *   serving ─(umount, SIGTERM/SIGINT, kernel unmount)─▶ draining: flush write-behind, checkpoint
 *           ─▶ unmount FUSE ─▶ stop actors ─▶ release the map lock ─▶ ended
 *
 * Ownership: main thread. This thread holds MAP.png.lock from start to end. During recovery the map
 * and the sidecar belong to the journal actor alone (no other actor runs yet: the scheduler opens
 * the map at its start and must not see it half repaired); afterwards the map file belongs to the
 * scheduler actor and the sidecar to the journal actor.
 */
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { ActorHandle } from '../actors/runtime/handle';
import { ClusterSlab } from '../actors/runtime/slab';
import { Supervisor } from '../actors/runtime/supervisor';
import { createSyncCallBuffer, serveSyncCalls } from '../actors/runtime/sync-call';
import { validateFaultSpec, type FaultSpec } from '../actors/runtime/faults';
import type { Config } from '../config';
import { acquireMapLock, type MapLock } from '../fs/map-lock';
import { sidecarPathFor } from '../fs/open-map';
import { CLUSTER_SIZE } from '../fs/types';
import { FuseSession } from '../fuse/session';
import { FrontEnd } from '../fuse/frontend';
import { prefetchCounters, readAheadCounters, warmCache } from '../fuse/cached-read';
import { setReadAhead } from './readahead';
import { monotonicNow } from '../protocol/clock';
import { ImapError, isImapError } from '../protocol/errors';
import type { JournalOps, RecoveryReport } from '../protocol/journal';
import type { CacheOps, IntegrityOps, SnapshotOps } from '../protocol/minor-actors';
import type { SchedulerOps, SchedulerOptions } from '../protocol/scheduler';
import type { JournalOptions } from '../actors/journal/journal.worker';
import { OpCounters, processMemory, type ActorStats, type DaemonStats } from './stats';

/** A fault armed in an actor from its first worker on (`imapfs mount --fault`; see faults.ts). */
export interface StartFault {
  actor: string;
  spec: FaultSpec;
}

export interface MountSessionArgs {
  map: string;
  mountpoint: string;
  config: Config;
  log: Logger;
  /** Testing recovery: faults armed at spawn, before the journal's `recover` (count shared by respawns). */
  faults?: readonly StartFault[];
}

/** The daemon's actors, in registration order (stopAll stops them in reverse). */
export const ACTOR_NAMES = ['scheduler', 'journal', 'cache', 'integrity', 'snapshot'] as const;

const SLOT_BYTES = 1 << 20;
const READ_SLOTS = 32;
const IDLE_FLUSH_MS = 1000;
/** How often the size trigger of checkpoints (journal.checkpoint_bytes) is looked at. */
const SIZE_CHECK_MS = 500;
/** No heartbeat for this long = hung (the runtime's default, 2 s, is shorter than a map growth). */
const SCHEDULER_HANG_MS = 60_000;
/**
 * Deliveries of `recover` (the first included) before the mount gives up: the runtime's maxAttempts
 * for idempotent requests, stated here because the mount's error message counts them. Each failed
 * delivery costs one journal restart, well inside the restart budget (5 per minute).
 */
const RECOVERY_ATTEMPTS = 3;

const actorModule = (name: string): string => path.join(__dirname, '..', 'actors', name, `${name}.worker`);

export class MountSession {
  readonly ended: Promise<void>;
  private endedResolve!: () => void;
  private fuse: FuseSession | null = null;
  private timers: NodeJS.Timeout[] = [];
  private growServer: { stop(): void } | null = null;
  private checkpointing: Promise<void> | null = null;
  private lastCheckpointCommitted = 0;
  private readonly startedAt = Date.now();
  private checkpoints = 0;
  /** Of those, started because journal.checkpoint_bytes were written. */
  private sizeCheckpoints = 0;

  private constructor(
    private readonly args: MountSessionArgs,
    private config: Config,
    private readonly lock: MapLock,
    private readonly supervisor: Supervisor,
    private readonly journal: ActorHandle<JournalOps>,
    private readonly scheduler: ActorHandle<SchedulerOps>,
    private readonly frontEnd: FrontEnd,
    readonly openReport: RecoveryReport,
    private readonly counters: OpCounters,
    private readonly health: { backgroundErrors: number },
  ) {
    this.ended = new Promise((resolve) => (this.endedResolve = resolve));
  }

  static async start(args: MountSessionArgs): Promise<MountSession> {
    const { config, log } = args;
    const readOnly = config.fuse.read_only;
    const faults = args.faults ?? [];
    for (const f of faults) {
      if (!(ACTOR_NAMES as readonly string[]).includes(f.actor)) {
        throw new ImapError(
          'IMAP_E_INVALID',
          `--fault: no actor '${f.actor}' (actors: ${ACTOR_NAMES.join(', ')})`,
        );
      }
      validateFaultSpec(f.spec);
    }
    const faultOf = (actor: string): FaultSpec | undefined => faults.find((f) => f.actor === actor)?.spec;
    // Taken before anything touches the files, and held by this thread until the end: the journal's
    // recovery checks that this process holds it rather than taking it itself.
    const lock = acquireMapLock(args.map);

    const readSlab = ClusterSlab.create({ id: 1, slotCount: READ_SLOTS, slotSize: SLOT_BYTES });
    // Write-behind buffers are io.chunk_bytes each; io.max_dirty_bytes bounds them all.
    const chunk = config.io.chunk_bytes;
    const writeSlots = Math.max(2, Math.floor(config.io.max_dirty_bytes / chunk));
    const writeSlab = ClusterSlab.create({ id: 2, slotCount: writeSlots, slotSize: chunk });
    const growMailbox = config.map.grow && !readOnly ? createSyncCallBuffer() : null;

    const supervisor = new Supervisor({ slabs: [readSlab, writeSlab], startTimeoutMs: 60_000 });
    const scheduler = supervisor.add<SchedulerOps>({
      name: 'scheduler',
      module: actorModule('scheduler'),
      options: {
        mapPath: args.map,
        readOnly,
        ioDelayMs: config.scheduler.io_delay_ms,
        concurrency: config.scheduler.max_inflight,
      } satisfies SchedulerOptions,
      queue: {
        totalCapacity: config.scheduler.queue_capacity,
        inFlightPerClass: config.scheduler.per_class_inflight,
        inFlightPerCaller: config.scheduler.per_caller_inflight,
      },
      // Growth and checkpoints are synchronous copies/rewrites of the whole map in this thread (several
      // seconds for a map of a few GB): the default 2 s hang timeout killed the scheduler mid-growth.
      heartbeat: { timeoutMs: SCHEDULER_HANG_MS },
      fault: faultOf('scheduler'),
    });
    const journal = supervisor.add<JournalOps>({
      name: 'journal',
      module: actorModule('journal'),
      options: {
        sidecarPath: sidecarPathFor(args.map),
        enforcePermissions: !config.fuse.default_permissions,
        growMailbox,
        durable: config.journal.enabled,
        recoveryDone: new SharedArrayBuffer(4),
      } satisfies JournalOptions,
      queue: { totalCapacity: config.scheduler.queue_capacity },
      // exportMetadata serializes the whole store, big unlinks are one transaction, and recovery's
      // steps other than the checksum scan (which beats as it goes) run without a beat.
      heartbeat: { timeoutMs: config.journal.hang_timeout_s * 1000 },
      maxAttempts: RECOVERY_ATTEMPTS,
      fault: faultOf('journal'),
    });
    const cache = supervisor.add<CacheOps>({
      name: 'cache',
      module: actorModule('cache'),
      // The drain records the hottest clusters in MAP.png.cachewarm; warmCache() loads them.
      options: {
        l1Bytes: config.cache.l1_bytes,
        l2Bytes: config.cache.l2_bytes,
        l2Streamed: config.cache.l2_streamed,
        warmPath: `${args.map}.cachewarm`,
      },
      fault: faultOf('cache'),
    });
    supervisor.add<IntegrityOps>({
      name: 'integrity',
      module: actorModule('integrity'),
      fault: faultOf('integrity'),
    });
    supervisor.add<SnapshotOps>({
      name: 'snapshot',
      module: actorModule('snapshot'),
      options: { sidecarPath: sidecarPathFor(args.map) },
      fault: faultOf('snapshot'),
    });

    // Recovery first, with only the journal running; nothing is served unless it completed.
    let openReport: RecoveryReport;
    try {
      openReport = await recoverInJournal(journal, args, log);
    } catch (err) {
      await supervisor
        .stopAll()
        .catch((stopErr: unknown) =>
          log.error(
            { err: stopErr, code: 'IMAP_E_ACTOR_FAILED' },
            'stopping the actors after a failed recovery',
          ),
        );
      lock.release();
      throw err;
    }
    log.info({ recovery: openReport }, 'map opened');

    const counters = new OpCounters();
    const health = { backgroundErrors: 0 };
    const frontEnd = new FrontEnd({
      journal,
      scheduler,
      cache,
      readSlab,
      writeSlab,
      config,
      counters,
      onBackgroundError: (err, what) => {
        health.backgroundErrors++;
        log.error({ err, what }, 'background work failed');
      },
    });
    const session = new MountSession(
      args,
      config,
      lock,
      supervisor,
      journal,
      scheduler,
      frontEnd,
      openReport,
      counters,
      health,
    );

    try {
      // The journal runs already; this starts the others (the scheduler opens the repaired map).
      await supervisor.start();
      // Hottest clusters of the last clean unmount, loaded at background priority.
      void warmCache({ journal, scheduler, cache, readSlab, config }).catch((err: unknown) =>
        log.warn({ err }, 'cache warming failed'),
      );
      if (growMailbox) {
        session.growServer = serveSyncCalls(
          growMailbox,
          ([needed, current]) => session.grow(needed!, current!),
          (err) => log.error({ err }, 'map growth failed'),
        );
      }
      session.fuse = FuseSession.mount(args.mountpoint, frontEnd.ops, {
        maxWrite: config.fuse.max_write,
        writebackCache: config.fuse.writeback_cache,
        posixAcl: config.fuse.acl,
        allowOther: config.fuse.allow_other,
        defaultPermissions: config.fuse.default_permissions,
        readOnly,
        entryTimeout: config.fuse.entry_timeout_s,
        attrTimeout: config.fuse.attr_timeout_s,
        fsname: `imapfs:${args.map}`,
        subtype: 'imapfs',
      });
    } catch (err) {
      session.growServer?.stop();
      await supervisor.stopAll().catch(() => undefined);
      lock.release();
      if (err instanceof ImapError) throw err;
      const why = err instanceof Error ? err.message : String(err);
      throw new ImapError('IMAP_E_BUSY', `cannot mount on ${args.mountpoint}: ${why}`, { cause: err });
    }
    // Not before the kernel has processed our INIT reply: it sets the read-ahead to
    // min(current, max_readahead), which turned an earlier 1 MiB back into 128 KiB.
    session.fuse.once('ready', () => {
      try {
        const kib = setReadAhead(args.mountpoint, config.fuse.max_write / 1024);
        log.info({ readAheadKiB: kib }, 'kernel read-ahead set');
      } catch (err) {
        // Not fatal: reads still work in the kernel's default 128 KiB requests, only slower.
        log.warn({ err }, 'could not raise the kernel read-ahead');
      }
    });
    session.fuse.on('unmount', (errno) => {
      log.info({ errno }, 'FUSE session ended');
      session.endedResolve();
    });
    session.fuse.on('error', (err) => log.error({ err }, 'FUSE session error'));
    session.startTimers();
    return session;
  }

  private startTimers(): void {
    this.timers.push(setInterval(() => this.frontEnd.writes.flushIdle(IDLE_FLUSH_MS), IDLE_FLUSH_MS));
    const every = Math.max(1, this.config.journal.checkpoint_interval_s) * 1000;
    this.timers.push(
      setInterval(() => {
        const written = this.frontEnd.writes.committedBytes - this.lastCheckpointCommitted;
        if (written > 0 || this.frontEnd.writes.dirtyBytes > 0) {
          this.checkpoint().catch((err: unknown) =>
            this.args.log.error({ err }, 'periodic checkpoint failed'),
          );
        }
      }, every),
    );
    // By size: a burst of writes is folded in once journal.checkpoint_bytes were committed since the
    // last checkpoint, without waiting for the interval (bounds recovery work and the WAL's size).
    this.timers.push(
      setInterval(() => {
        const written = this.frontEnd.writes.committedBytes - this.lastCheckpointCommitted;
        if (written >= this.config.journal.checkpoint_bytes && this.checkpointing === null) {
          this.sizeCheckpoints++;
          this.checkpoint().catch((err: unknown) =>
            this.args.log.error({ err, written }, 'size-triggered checkpoint failed'),
          );
        }
      }, SIZE_CHECK_MS),
    );
    for (const t of this.timers) t.unref();
  }

  /** Answers the journal's growth call: doubles the side until `needed` more clusters fit. */
  private async grow(needed: number, current: number): Promise<number[] | null> {
    let side = (await this.scheduler.request('info', {}, { priority: 'metadata', idempotent: true })).side;
    const clustersOf = (s: number): number => (s * s * 4) / CLUSTER_SIZE;
    do side *= 2;
    while (clustersOf(side) - current < needed);
    if (side > this.config.map.max_side) {
      this.args.log.warn({ side, max: this.config.map.max_side }, 'map is full and may not grow further');
      return null;
    }
    this.args.log.info({ side }, 'growing the map');
    const info = await this.scheduler.request(
      'grow',
      { side },
      { priority: 'metadata', idempotent: true, deadline: undefined },
    );
    return [info.side, info.clusterCount];
  }

  /** Folds everything into the PNG: afterwards the map alone is a complete, valid filesystem. */
  checkpoint(): Promise<void> {
    this.checkpointing ??= this.doCheckpoint().finally(() => (this.checkpointing = null));
    return this.checkpointing;
  }

  private async doCheckpoint(): Promise<void> {
    const t0 = performance.now();
    // Where a checkpoint's time goes, logged with it (docs/operations.md: slow checkpoints).
    const phases: Record<string, number> = {};
    let mark = t0;
    const phase = (name: string): void => {
      const now = performance.now();
      phases[name] = Math.round(now - mark);
      mark = now;
    };
    const opts = { priority: 'background', idempotent: true } as const;
    await this.frontEnd.writes.flushAll();
    phase('flushMs');
    const committed = this.frontEnd.writes.committedBytes;
    await this.frontEnd.durablePoint(null);
    phase('durableMs');
    const { generation } = await this.journal.request('info', {}, opts);
    const next = generation + 1;
    const metadata = await this.journal.request('exportMetadata', { generation: next }, opts);
    phase('exportMs');
    await this.scheduler.request('checkpoint', { generation: next, metadata }, opts);
    phase('mapMs');
    await this.journal.request('setGeneration', { generation: next }, opts);
    phase('journalMs');
    this.lastCheckpointCommitted = committed;
    this.checkpoints++;
    this.args.log.info(
      {
        generation: next,
        ms: Math.round(performance.now() - t0),
        ...phases,
        metadataBytes: metadata.byteLength,
      },
      'checkpoint',
    );
  }

  async shutdown(reason: string): Promise<void> {
    const { log } = this.args;
    log.info({ reason }, 'unmounting: draining and checkpointing');
    for (const t of this.timers) clearInterval(t);
    try {
      if (!this.config.fuse.read_only) await this.checkpoint();
    } catch (err) {
      log.error({ err }, 'final checkpoint failed: the map will be recovered at the next mount');
    }
    try {
      this.fuse?.unmount();
    } catch (err) {
      log.error({ err }, 'FUSE unmount failed');
    }
    this.growServer?.stop();
    await this.supervisor.stopAll();
    this.lock.release();
    this.endedResolve();
  }

  reload(config: Config): void {
    this.config = { ...this.config, journal: config.journal, log: config.log, map: config.map };
  }

  async setFault(args: Record<string, unknown>): Promise<unknown> {
    const actor = String(args.actor ?? '');
    if (!this.supervisor.names().includes(actor)) {
      throw new ImapError(
        'IMAP_E_INVALID',
        `no actor '${actor}' (actors: ${this.supervisor.names().join(', ')})`,
      );
    }
    const spec = validateFaultSpec(args.spec);
    await this.supervisor.setFault(actor, spec);
    return { actor, spec };
  }

  async clearFaults(): Promise<unknown> {
    await this.supervisor.clearFault();
    return { cleared: true };
  }

  async stats(): Promise<DaemonStats> {
    const sup = this.supervisor.stats();
    const actors: Record<string, ActorStats> = {};
    for (const a of sup.actors) {
      actors[a.name] = {
        state: a.state,
        restarts: a.restarts,
        inFlight: a.inFlight,
        queued: Object.values(a.queue.depth).reduce((x, y) => x + y, 0),
        missedDeadlines: a.answeredLate,
      };
    }
    const { ops, errorsByCode } = this.counters.snapshot();
    let cache: DaemonStats['cache'] = { hitRatio: null };
    try {
      const c = await this.supervisor
        .get<CacheOps>('cache')
        .request('stats', {}, { priority: 'background', idempotent: true });
      const reads = c.hits + c.misses;
      // windows: the reader's prefetch decisions (main thread); c.prefetch: what the cache received.
      cache = {
        ...c,
        hitRatio: reads > 0 ? c.hits / reads : null,
        windows: prefetchCounters(this.scheduler),
      };
    } catch (err) {
      this.args.log.warn({ err }, 'cache stats unavailable');
    }
    const handle = sup.actors.find((a) => a.name === 'scheduler');
    let scheduler: Record<string, unknown> = {};
    try {
      const io = await this.scheduler.request('stats', {}, { priority: 'metadata', idempotent: true });
      scheduler = {
        ...io,
        inFlightByClass: handle?.queue.inFlight,
        limitedByClass: handle?.queue.limitedByClass,
        limitedByCaller: handle?.queue.limitedByCaller,
        shed: handle?.queue.shed,
        rejected: handle?.queue.rejected,
        servedLate: handle?.queue.servedLate,
      };
    } catch (err) {
      this.args.log.warn({ err }, 'scheduler stats unavailable');
    }
    return {
      map: this.args.map,
      mountpoint: this.args.mountpoint,
      pid: process.pid,
      uptimeS: (Date.now() - this.startedAt) / 1000,
      ...processMemory(),
      ops,
      errorsByCode,
      actors,
      dirtyBytes: this.frontEnd.writes.dirtyBytes,
      cache,
      readAhead: readAheadCounters(this.scheduler),
      scheduler,
      writeBehind: {
        chunkBytes: this.config.io.chunk_bytes,
        committedBytes: this.frontEnd.writes.committedBytes,
        flushes: this.frontEnd.writes.flushes,
        overlapped: this.frontEnd.writes.overlapped,
        serialized: this.frontEnd.writes.serialized,
        backgroundErrors: this.health.backgroundErrors,
      },
      checkpoints: this.checkpoints,
      sizeCheckpoints: this.sizeCheckpoints,
      recovery: this.openReport,
    };
  }
}

/**
 * Starts the journal actor alone and has it recover the map (JournalOps.recover). A crash or hang of
 * the journal while it recovers makes the supervisor replace the worker and deliver `recover` again
 * (it is idempotent), at most RECOVERY_ATTEMPTS deliveries in all. If none completes, the mount fails
 * with IMAP_E_RECOVERY_FAILED naming what to do; an error the recovery itself reports (a corrupt
 * sidecar, a foreign lock, an I/O error) keeps its own code and hint.
 */
async function recoverInJournal(
  journal: ActorHandle<JournalOps>,
  args: MountSessionArgs,
  log: Logger,
): Promise<RecoveryReport> {
  const stopWatching = journal.onStateChange((state) => {
    if (state === 'failed') {
      log.warn(
        { actor: 'journal', failure: journal.lastFailure, code: 'IMAP_E_ACTOR_FAILED' },
        `journal actor failed during recovery (the supervisor restarts it; recover is delivered at most ${RECOVERY_ATTEMPTS} times)`,
      );
    }
  });
  try {
    await journal.start();
    return await journal.request(
      'recover',
      { mapPath: args.map, grow: args.config.map.grow },
      // Retried on a new worker after a crash or hang; no deadline that matters: a big map takes seconds.
      { priority: 'metadata', idempotent: true, deadline: monotonicNow() + 3_600_000 },
    );
  } catch (err) {
    if (isImapError(err) && err.code !== 'IMAP_E_ACTOR_FAILED') throw err;
    const why = isImapError(err)
      ? (err.detail ?? err.message)
      : err instanceof Error
        ? err.message
        : String(err);
    const hung = /no heartbeat/.test(why);
    log.error({ err, code: 'IMAP_E_RECOVERY_FAILED' }, 'recovery failed');
    throw new ImapError(
      'IMAP_E_RECOVERY_FAILED',
      `${args.map}: ${why}. Run \`imapfs fsck --repair ${args.map}\`, then mount again` +
        (hung
          ? `; if recovery of a very large map needs longer, raise journal.hang_timeout_s (now ${args.config.journal.hang_timeout_s} s)`
          : ''),
      { cause: err },
    );
  } finally {
    stopWatching();
  }
}
