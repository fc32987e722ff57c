/**
 * The journal actor: owns the metadata store (MAP.png.imapdb) and the POSIX layer over it.
 *
 *   lifecycle: see runtime/lifecycle.ts (created → starting → ready ⇄ degraded → draining → stopped)
 *
 * Ownership: the MetadataStore, its allocator and the FileSystem live only in this thread; every
 * other thread reaches them by message (src/protocol/journal.ts). Serial (concurrency 1): SQLite is
 * synchronous, and one request at a time keeps each transaction whole.
 *
 * Durability: commits are grouped; `sync` is the durable point, called by the front end after the
 * scheduler made the data durable (ordered copy-on-write, DESIGN.md §4).
 *
 * Start: the mount's first request is `recover` (openMap's whole flow, in this thread, so a crash or
 * hang of the journal during recovery is one the supervisor sees and retries). The store is opened
 * only after it: before recovery the sidecar may be stale, foreign or missing, and the container's
 * checksums unrepaired. `recoveryDone` (shared by every journal worker of the mount) tells a worker
 * started after a later crash that recovery is done, so it opens the store at init as before.
 */
import { serialize, deserialize } from 'node:v8';
import { runActor, type ActorContext, type ActorHandlers } from '../runtime/host';
import { syncCall } from '../runtime/sync-call';
import { HEARTBEAT_WORD, type ActorWorkerData } from '../runtime/wire';
import { workerData } from 'node:worker_threads';
import { FileSystem } from '../../fs/filesystem';
import { serializeStore } from '../../fs/metadata-image';
import { openMap } from '../../fs/open-map';
import { MetadataStore } from '../../fs/store';
import { checkAccess, type Caller } from '../../fs/access';
import type { Geometry } from '../../fs/allocator';
import type { FsCaller, JournalOps } from '../../protocol/journal';
import { isDir, R_OK, W_OK } from '../../fs/modes';
import { ImapError } from '../../protocol/errors';
import { constants as fsConstants } from 'node:fs';

export interface JournalOptions {
  sidecarPath: string;
  enforcePermissions: boolean;
  /** Growth is asked of the main thread through this mailbox; null: growth disabled (ENOSPC). */
  growMailbox: SharedArrayBuffer | null;
  /** Unsafe: no durability barrier (for measuring the journal's cost only). */
  durable: boolean;
  /** Int32 word 0: 1 once `recover` succeeded in this mount (in any journal worker), else 0. */
  recoveryDone: SharedArrayBuffer;
}

/** The store and the POSIX layer over it; absent until the mount's recovery is done. */
class JournalState {
  readonly durable: boolean;
  readonly enforcePermissions: boolean;
  private opened: { store: MetadataStore; fs: FileSystem } | null = null;
  private readonly done: Int32Array;

  constructor(private readonly options: JournalOptions) {
    this.durable = options.durable;
    this.enforcePermissions = options.enforcePermissions;
    this.done = new Int32Array(options.recoveryDone);
  }

  get recovered(): boolean {
    return Atomics.load(this.done, 0) === 1;
  }

  markRecovered(): void {
    Atomics.store(this.done, 0, 1);
  }

  get store(): MetadataStore {
    return this.require().store;
  }

  get fs(): FileSystem {
    return this.require().fs;
  }

  /**
   * `replacing`: this worker replaces one that crashed while the mount served. The front end still
   * holds the plans that worker prepared, and their map writes may still be running, so their
   * reservations stay (committed or aborted later, as without the crash). Returning them to free
   * space here let the next prepare hand out clusters a stale write was about to overwrite. Pending
   * frees stay too: they become allocatable at the next durable point, not because a thread died.
   * Only recovery (the mount's start, no plan outstanding) returns reservations to free space.
   */
  open(replacing: boolean): void {
    const o = this.options;
    const store = MetadataStore.open(o.sidecarPath);
    const fs = new FileSystem(store, {
      grow: o.growMailbox ? growThroughMain(o.growMailbox) : undefined,
      enforcePermissions: o.enforcePermissions,
    });
    if (!replacing) fs.allocator.recover();
    this.opened = { store, fs };
  }

  close(): void {
    const opened = this.opened;
    this.opened = null;
    if (!opened) return;
    if (this.durable) opened.store.sync();
    opened.store.close();
  }

  private require(): { store: MetadataStore; fs: FileSystem } {
    // Only a daemon bug gets here (the mount sends `recover` first and waits for it); refusing keeps
    // an unrecovered sidecar from ever answering a FUSE request.
    if (!this.opened) throw new ImapError('IMAP_E_INTERNAL', 'journal: request before the map was recovered');
    return this.opened;
  }
}

/** The access bits an open(2) with these flags needs. */
function openWants(flags: number): number {
  let want = 0;
  switch (flags & 3 /* O_ACCMODE */) {
    case fsConstants.O_RDONLY:
      want = R_OK;
      break;
    case fsConstants.O_WRONLY:
      want = W_OK;
      break;
    default:
      want = R_OK | W_OK;
  }
  if (flags & fsConstants.O_TRUNC) want |= W_OK;
  return want;
}

/** Names arrive as Uint8Array (structured clone drops Buffer's prototype); wrap without copying. */
const bytes = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function caller(c: FsCaller): Caller {
  return { uid: c.uid, gid: c.gid, umask: c.umask, groups: c.groups ?? [] };
}

const GROW_TIMEOUT_MS = 10 * 60_000;

function growThroughMain(mailbox: SharedArrayBuffer): (needed: number, current: number) => Geometry | null {
  // Growth copies the map and can take many seconds; this thread is blocked meanwhile, so it beats
  // its heartbeat between wait slices or the supervisor would kill it as hung (and retry the op,
  // which asks to grow again: a restart loop that ends with the journal failed).
  const wire = workerData as ActorWorkerData;
  const beats = new Int32Array(wire.heartbeat);
  const whileWaiting = {
    sliceMs: Math.max(10, Math.floor(wire.heartbeatIntervalMs)),
    tick: () => void Atomics.add(beats, HEARTBEAT_WORD, 1),
  };
  return (needed, current) => {
    const answer = syncCall(mailbox, [needed, current], GROW_TIMEOUT_MS, whileWaiting);
    if (!answer) return null;
    return { side: answer[0]!, clusterCount: answer[1]! };
  };
}

/**
 * The ops that change the store. A crash after one's transaction committed and before its reply
 * left makes the handle deliver it again to the next worker; applied again, a create would answer
 * EEXIST, an unlink ENOENT, a release would close a handle twice. So each runs in one transaction
 * with its reply kept beside it (the last_reply table), and a second delivery gets the kept reply.
 */
const APPLIED_ONCE = [
  'setattr',
  'mknod',
  'create',
  'mkdir',
  'symlink',
  'link',
  'unlink',
  'rmdir',
  'rename',
  'setxattr',
  'removexattr',
  'open',
  'release',
  'fallocate',
  'prepareWrite',
  'commitWrite',
  'abortWrite',
  'prepareTruncate',
  'commitTruncate',
  'mapGrown',
] as const satisfies ReadonlyArray<keyof JournalOps>;

type Handlers = ActorHandlers<JournalOps, JournalState>;
type AnyJournalHandler = (payload: unknown, context: ActorContext<JournalState>) => unknown;

function appliedOnce(handlers: Handlers): Handlers {
  // The handlers' types differ per op; the wrapper only passes payloads and results through.
  const out = { ...handlers } as unknown as Record<string, AnyJournalHandler>;
  for (const op of APPLIED_ONCE) {
    const inner = out[op]!;
    out[op] = (payload, context) => {
      const { store } = context.state;
      const { id, attempt } = context.request;
      if (attempt > 1) {
        const kept = store.lastReply(id);
        if (kept !== undefined) return deserialize(kept);
      }
      return store.transaction(() => {
        const result = inner(payload, context);
        if (result instanceof Promise)
          throw new ImapError('IMAP_E_INTERNAL', `journal op ${op} is not synchronous`);
        store.setLastReply(id, serialize(result));
        return result;
      });
    };
  }
  return out as unknown as Handlers;
}

runActor<JournalOps, JournalState>({
  name: 'journal',
  init({ options }) {
    const state = new JournalState(options as JournalOptions);
    // Recovered by an earlier worker of this mount: this one replaces a worker that crashed in service.
    if (state.recovered) state.open(true);
    return state;
  },
  handlers: appliedOnce({
    recover: (p, { state, request, keepAlive }) => {
      // A delivery after the recovery succeeded (its worker died before the reply got out) runs the
      // flow again on the closed store: it is idempotent, and its report then shows nothing left to do.
      state.close();
      const started = process.hrtime.bigint();
      // The checksum repair is a synchronous scan of the whole map (≈2 s per GiB here): it beats the
      // heartbeat as it goes, so only a recovery that stops progressing is taken for a hang.
      const opened = openMap(p.mapPath, { grow: p.grow, lockHeld: true, onProgress: keepAlive });
      const report = opened.report;
      opened.close();
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      state.open(false);
      state.markRecovered();
      return { ...report, ms, attempt: request.attempt };
    },
    lookup: (p, { state }) => state.fs.lookup(p.parent, bytes(p.name), caller(p.caller)),
    getattr: (p, { state }) => state.fs.getattr(p.ino),
    setattr: (p, { state }) => state.fs.setattr(p.ino, p.attr, caller(p.caller)),
    checkTruncate: (p, { state }) => {
      state.fs.checkTruncate(p.ino, caller(p.caller));
      return null;
    },
    readlink: (p, { state }) => state.fs.readlink(p.ino),
    readdir: (p, { state }) => state.fs.readdir(p.ino, p.cookie, p.limit),
    mknod: (p, { state }) => state.fs.mknod(p.parent, bytes(p.name), p.mode, p.rdev, caller(p.caller)),
    create: (p, { state }) => {
      const inode = state.fs.create(p.parent, bytes(p.name), p.mode, caller(p.caller));
      return p.open ? state.fs.open(inode.ino) : inode;
    },
    mkdir: (p, { state }) => state.fs.mkdir(p.parent, bytes(p.name), p.mode, caller(p.caller)),
    symlink: (p, { state }) => state.fs.symlink(p.parent, bytes(p.name), bytes(p.target), caller(p.caller)),
    link: (p, { state }) => state.fs.link(p.ino, p.newParent, bytes(p.newName), caller(p.caller)),
    unlink: (p, { state }) => {
      state.fs.unlink(p.parent, bytes(p.name), caller(p.caller));
      return null;
    },
    rmdir: (p, { state }) => {
      state.fs.rmdir(p.parent, bytes(p.name), caller(p.caller));
      return null;
    },
    rename: (p, { state }) => {
      state.fs.rename(p.parent, bytes(p.name), p.newParent, bytes(p.newName), p.flags, caller(p.caller));
      return null;
    },
    access: (p, { state }) => {
      checkAccess(state.fs.getattr(p.ino), caller(p.caller), p.mask, 'access');
      return null;
    },
    setxattr: (p, { state }) => {
      state.fs.setxattr(p.ino, bytes(p.name), bytes(p.value), p.flags, caller(p.caller));
      return null;
    },
    getxattr: (p, { state }) => state.fs.getxattr(p.ino, bytes(p.name), p.size),
    listxattr: (p, { state }) => state.fs.listxattr(p.ino, p.size),
    removexattr: (p, { state }) => {
      state.fs.removexattr(p.ino, bytes(p.name), caller(p.caller));
      return null;
    },
    open: (p, { state }) => {
      if (p.caller && state.enforcePermissions) {
        const inode = state.fs.getattr(p.ino);
        checkAccess(inode, caller(p.caller), openWants(p.flags ?? 0), 'open');
      }
      return state.fs.open(p.ino);
    },
    opendir: (p, { state }) => {
      const inode = state.fs.getattr(p.ino);
      if (!isDir(inode.mode)) throw new ImapError('IMAP_E_NOT_DIR', `opendir ino ${p.ino}`);
      if (state.enforcePermissions) checkAccess(inode, caller(p.caller), R_OK, 'opendir');
      return null;
    },
    release: (p, { state }) => {
      state.fs.release(p.ino);
      return null;
    },
    statfs: (_p, { state }) => state.fs.statfs(),
    fallocate: (p, { state }) => {
      state.fs.fallocate(p.ino, p.offset, p.length, p.keepSize);
      return null;
    },
    planRead: (p, { state }) => state.fs.planRead(p.ino, p.offset, p.length),
    mapSegments: (p, { state }) =>
      state.fs.extents.mapSegments(p.first, p.count, Math.min(Math.max(1, p.limit ?? 256), 4096)),
    prepareWrite: (p, { state }) => state.fs.prepareWrite(p.ino, p.offset, p.length, p.near),
    commitWrite: (p, { state }) => {
      state.fs.commitWrite(p.plan, bytes(p.crcs), p.mtimeNs);
      return state.fs.getattr(p.plan.ino);
    },
    abortWrite: (p, { state }) => {
      state.fs.abortWrite(p.plan);
      return null;
    },
    prepareTruncate: (p, { state }) => state.fs.prepareTruncate(p.ino, p.size),
    commitTruncate: (p, { state }) => {
      state.fs.commitTruncate(p.plan, p.tailCrc ? bytes(p.tailCrc) : null);
      return state.fs.getattr(p.plan.ino);
    },
    sync: (_p, { state }) => {
      // The WAL made durable; folding it into the database is the checkpoint's job (setGeneration).
      if (state.durable) state.store.syncWal();
      return { released: state.fs.releasePending() };
    },
    exportMetadata: (p, { state }) => serializeStore(state.store, { generation: p.generation }),
    setGeneration: (p, { state }) => {
      state.store.transaction(() => state.store.setGeneration(p.generation));
      state.store.sync();
      return null;
    },
    mapGrown: (p, { state }) => {
      state.fs.allocator.addSpace({ side: p.side, clusterCount: p.clusterCount });
      return null;
    },
    info: (_p, { state }) => {
      const info = state.store.info;
      return {
        generation: state.store.generation,
        files: state.store.countInodes(),
        usedClusters: info.clusterCount - state.store.freeTotal(),
        clusterCount: info.clusterCount,
        side: info.side,
      };
    },
  }),
  drain(state) {
    state.close();
  },
});
