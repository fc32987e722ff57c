/**
 * The FUSE front end: one handler per kernel op, in the order libfuse declares them. Each handler
 * turns the op into typed requests to the actors (journal for metadata, scheduler for map I/O) with a
 * priority class and the caller's identity, and answers the kernel with the reply or the errno.
 *
 * Ownership (main thread): the attribute and dentry caches, the write-behind buffers (WriteBehind),
 * the per-op counters. Nothing here touches the map file or the store directly.
 *
 * Invalidation rules of the caches:
 *   - an op that answers with an inode refreshes that inode's attributes;
 *   - unlink, rmdir, rename and link change other inodes' nlink/ctime: they clear the attribute cache
 *     and drop the dentries they name;
 *   - data writes update size/mtime when their commit answers; until then getattr reports the size
 *     including buffered writes, so `ls -l` and `stat` never go backwards.
 */
import { constants as fsConstants } from 'node:fs';
import type { ActorHandle } from '../actors/runtime/handle';
import type { ClusterSlab } from '../actors/runtime/slab';
import type { Config } from '../config';
import type { SetAttr as FsSetAttr } from '../fs/filesystem';
import type { Inode } from '../fs/types';
import type { Caller, OpName, PayloadOf, PriorityClass, ResultOf } from '../protocol/envelope';
import { ImapError } from '../protocol/errors';
import type { FsCaller, JournalOps } from '../protocol/journal';
import type { CacheOps } from '../protocol/cache';
import type { SchedulerOps } from '../protocol/scheduler';
import type { OpCounters } from '../daemon/stats';
import { errnoOf, reply } from './binding';
import {
  SetAttr,
  type Attr,
  type DirEntry,
  type Entry,
  type FuseRequest,
  type LowLevelOps,
  type ReplyKind,
  type SetAttrValues,
  type Timespec,
} from './types';
import { cachedReaderFor, invalidateRuns } from './cached-read';
import { GroupCommit } from './group-commit';
import { WriteBehind } from './write-behind';

const S_IFMT = 0o170000;
const READDIR_BATCH = 256;
const NO_XATTR_MAX = 100_000;
const POSIX_ACL_PREFIX = Buffer.from('system.posix_acl_');

function ts(ns: bigint): Timespec {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}

function tsToNs(t: Timespec): bigint {
  return BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
}

export function inodeToAttr(inode: Inode, sizeOverride?: number): Attr {
  const size = sizeOverride ?? inode.size;
  return {
    ino: inode.ino,
    mode: inode.mode,
    nlink: inode.nlink,
    uid: inode.uid,
    gid: inode.gid,
    rdev: inode.rdev,
    size,
    blocks: Math.ceil(size / 4096) * 8,
    blksize: 4096,
    atime: ts(inode.atimeNs),
    mtime: ts(inode.mtimeNs),
    ctime: ts(inode.ctimeNs),
  };
}

const { O_TRUNC } = fsConstants;

interface Cached<T> {
  value: T;
  expires: number;
}

export interface FrontEndDeps {
  journal: ActorHandle<JournalOps>;
  scheduler: ActorHandle<SchedulerOps>;
  /** Clean map clusters (L1/L2), prefetch, warming; reads bypass it when absent. */
  cache?: ActorHandle<CacheOps>;
  /** Read buffers: slots of up to 1 MiB. */
  readSlab: ClusterSlab;
  /** Write-behind buffers; its slot count bounds the dirty bytes. */
  writeSlab: ClusterSlab;
  config: Config;
  counters: OpCounters;
  onBackgroundError: (err: unknown, what: string) => void;
}

export class FrontEnd {
  private readonly journal: ActorHandle<JournalOps>;
  private readonly scheduler: ActorHandle<SchedulerOps>;
  private readonly attrs = new Map<number, Cached<Inode>>();
  private readonly dentries = new Map<string, Cached<number>>();
  private readonly cacheMs: number;
  private nextFh = 1;
  /**
   * Inodes known to have no xattrs at all. The kernel asks getxattr("security.capability") before
   * every write to a file (to clear file capabilities); without this each write would pay a journal
   * round trip. This thread is the only writer of xattrs, so the entry stays true until a setxattr
   * on the inode (removexattr cannot add one). An inode number reused after deletion starts with no
   * xattrs, so stale entries stay correct. Bounded: cleared when it grows past NO_XATTR_MAX.
   */
  private readonly noXattrs = new Set<number>();
  /** Bumped by every setxattr: a "no xattrs" answer obtained across one is not remembered. */
  private xattrWrites = 0;
  readonly writes: WriteBehind;
  /** Concurrent fsyncs share one durable point (group commit). */
  readonly fsyncs: GroupCommit;

  constructor(private readonly deps: FrontEndDeps) {
    this.fsyncs = new GroupCommit(async () => {
      await this.durablePoint(null);
    }, deps.config.journal.group_commit_ms);
    this.journal = deps.journal;
    this.scheduler = deps.scheduler;
    this.cacheMs = deps.config.fuse.attr_timeout_s * 1000;
    this.writes = new WriteBehind({
      journal: deps.journal,
      scheduler: deps.scheduler,
      slab: deps.writeSlab,
      onCommitted: (inode) => this.remember(inode),
      onError: deps.onBackgroundError,
      reclaim: () => this.reclaim(),
    });
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  private static caller(req: FuseRequest<ReplyKind>): Caller & FsCaller {
    return { pid: req.pid, uid: req.uid, gid: req.gid, umask: req.umask };
  }

  private meta<K extends OpName<JournalOps>>(
    req: FuseRequest<ReplyKind> | null,
    op: K,
    payload: PayloadOf<JournalOps, K>,
    priority: PriorityClass = 'metadata',
  ): Promise<ResultOf<JournalOps, K>> {
    return this.journal.request(op, payload, {
      priority,
      caller: req ? FrontEnd.caller(req) : undefined,
      // A crash fault is injected before the handler runs, and SQLite rolls back a transaction cut
      // short, so delivering again after a journal restart does not apply an op twice.
      idempotent: true,
    });
  }

  /** Runs an op, answers errors with their errno, and counts it. */
  private run<K extends ReplyKind>(
    name: string,
    req: FuseRequest<K>,
    body: () => Promise<void>,
  ): Promise<void> {
    const start = process.hrtime.bigint();
    return body().then(
      () => this.deps.counters.record(name, start, 0),
      (err: unknown) => {
        const errno = errnoOf(err);
        this.deps.counters.record(name, start, errno, err instanceof ImapError ? err.code : undefined);
        reply.err(req.handle, errno);
      },
    );
  }

  private remember(inode: Inode): Inode {
    this.attrs.set(inode.ino, { value: inode, expires: Date.now() + this.cacheMs });
    return inode;
  }

  private dentryKey(parent: number, name: Buffer): string {
    return `${parent}/${name.toString('latin1')}`;
  }

  private forgetName(parent: number, name: Buffer): void {
    this.dentries.delete(this.dentryKey(parent, name));
  }

  /** Namespace changes alter other inodes' nlink and ctime: drop every cached attribute. */
  private namespaceChanged(): void {
    this.attrs.clear();
  }

  private attrOf(inode: Inode): Attr {
    const pending = this.writes.pendingEnd(inode.ino);
    return inodeToAttr(inode, pending > inode.size ? pending : undefined);
  }

  private entry(inode: Inode): Entry {
    return { attr: this.attrOf(this.remember(inode)) };
  }

  private async getInode(ino: number, req: FuseRequest<ReplyKind> | null): Promise<Inode> {
    const hit = this.attrs.get(ino);
    if (hit && hit.expires > Date.now()) return hit.value;
    return this.remember(await this.meta(req, 'getattr', { ino }));
  }

  // ---- ops, in fuse_lowlevel_ops order ---------------------------------------------------------------

  readonly ops: LowLevelOps = {
    lookup: (req, parent, name) =>
      this.run('lookup', req, async () => {
        const key = this.dentryKey(parent, name);
        const hit = this.dentries.get(key);
        if (hit && hit.expires > Date.now()) {
          const cached = this.attrs.get(hit.value);
          if (cached && cached.expires > Date.now()) {
            reply.entry(req.handle, { attr: this.attrOf(cached.value) });
            return;
          }
        }
        const inode = await this.meta(req, 'lookup', { parent, name, caller: FrontEnd.caller(req) });
        this.dentries.set(key, { value: inode.ino, expires: Date.now() + this.cacheMs });
        reply.entry(req.handle, this.entry(inode));
      }),

    getattr: (req, ino) =>
      this.run('getattr', req, async () => {
        reply.attr(req.handle, this.attrOf(await this.getInode(ino, req)));
      }),

    setattr: (req, ino, values, toSet) =>
      this.run('setattr', req, async () => {
        const caller = FrontEnd.caller(req);
        // Buffered writes commit with the mtime of their write(2): they must land before an explicit
        // utimens (cp -a and rsync set times through the still-open fd, before close).
        await this.writes.flushInode(ino);
        if (toSet & SetAttr.SIZE) await this.truncate(req, ino, values.size, caller);
        const attr = setattrFields(values, toSet);
        const inode = await this.meta(req, 'setattr', { ino, attr, caller });
        reply.attr(req.handle, this.attrOf(this.remember(inode)));
      }),

    readlink: (req, ino) =>
      this.run('readlink', req, async () => {
        reply.readlink(req.handle, await this.meta(req, 'readlink', { ino }));
      }),

    mknod: (req, parent, name, mode, rdev) =>
      this.run('mknod', req, async () => {
        const inode = await this.meta(req, 'mknod', {
          parent,
          name,
          mode,
          rdev,
          caller: FrontEnd.caller(req),
        });
        this.namespaceChanged();
        this.markNoXattrs(inode.ino);
        reply.entry(req.handle, this.entry(inode));
      }),

    mkdir: (req, parent, name, mode) =>
      this.run('mkdir', req, async () => {
        const inode = await this.meta(req, 'mkdir', { parent, name, mode, caller: FrontEnd.caller(req) });
        this.namespaceChanged();
        this.markNoXattrs(inode.ino);
        reply.entry(req.handle, this.entry(inode));
      }),

    unlink: (req, parent, name) =>
      this.run('unlink', req, async () => {
        await this.meta(req, 'unlink', { parent, name, caller: FrontEnd.caller(req) });
        this.forgetName(parent, name);
        this.namespaceChanged();
        reply.ok(req.handle);
      }),

    rmdir: (req, parent, name) =>
      this.run('rmdir', req, async () => {
        await this.meta(req, 'rmdir', { parent, name, caller: FrontEnd.caller(req) });
        this.forgetName(parent, name);
        this.namespaceChanged();
        reply.ok(req.handle);
      }),

    symlink: (req, target, parent, name) =>
      this.run('symlink', req, async () => {
        const inode = await this.meta(req, 'symlink', { parent, name, target, caller: FrontEnd.caller(req) });
        this.namespaceChanged();
        this.markNoXattrs(inode.ino);
        reply.entry(req.handle, this.entry(inode));
      }),

    rename: (req, parent, name, newParent, newName, flags) =>
      this.run('rename', req, async () => {
        await this.meta(req, 'rename', {
          parent,
          name,
          newParent,
          newName,
          flags,
          caller: FrontEnd.caller(req),
        });
        this.forgetName(parent, name);
        this.forgetName(newParent, newName);
        this.namespaceChanged();
        reply.ok(req.handle);
      }),

    link: (req, ino, newParent, newName) =>
      this.run('link', req, async () => {
        const inode = await this.meta(req, 'link', { ino, newParent, newName, caller: FrontEnd.caller(req) });
        this.namespaceChanged();
        reply.entry(req.handle, this.entry(inode));
      }),

    open: (req, ino, flags) =>
      this.run('open', req, async () => {
        if (this.deps.config.fuse.read_only && (flags & 3) !== 0 /* O_ACCMODE is not O_RDONLY */) {
          throw new ImapError('IMAP_E_READ_ONLY');
        }
        const caller = FrontEnd.caller(req);
        this.remember(await this.meta(req, 'open', { ino, flags, caller }));
        // libfuse turns FUSE_CAP_ATOMIC_O_TRUNC on by default: the kernel then sends O_TRUNC with the
        // open instead of a setattr(size 0), and the truncation is ours to do (it was ignored, so
        // `echo x > longfile` kept the old tail). After the open's own permission check, as POSIX asks.
        if ((flags & O_TRUNC) !== 0 && (flags & 3) !== 0) {
          try {
            await this.truncate(req, ino, 0, caller);
          } catch (err) {
            // The open fails as a whole: undo its count, or the inode would stay open for good.
            await this.meta(req, 'release', { ino });
            throw err;
          }
        }
        reply.open(req.handle, { fh: this.nextFh++ });
      }),

    read: (req, ino, size, offset) =>
      this.run('read', req, async () => {
        // Read-your-writes: buffered data for this file reaches the map first.
        await this.writes.flushInode(ino);
        // planRead → cache (hits) → scheduler (the missing span) → reply; prefetch (src/fuse/cached-read.ts).
        await cachedReaderFor(this.deps).read(ino, size, offset, FrontEnd.caller(req), (data, off, len) =>
          reply.buf(req.handle, data, off, len),
        );
      }),

    write: (req, ino, data, offset) =>
      this.run('write', req, async () => {
        if (this.deps.config.fuse.read_only) throw new ImapError('IMAP_E_READ_ONLY');
        await this.writes.write(ino, data, offset, FrontEnd.caller(req));
        reply.write(req.handle, data.length);
      }),

    flush: (req, ino) =>
      this.run('flush', req, async () => {
        // close(2) reports write-behind errors, as NFS and the kernel's own writeback do.
        await this.writes.flushInode(ino);
        reply.ok(req.handle);
      }),

    release: (req, ino) =>
      this.run('release', req, async () => {
        await this.writes.flushInode(ino).catch(() => undefined); // already reported at flush/fsync
        await this.meta(req, 'release', { ino });
        this.attrs.delete(ino);
        reply.ok(req.handle);
      }),

    fsync: (req, ino) =>
      this.run('fsync', req, async () => {
        await this.writes.flushInode(ino);
        await this.fsyncs.commit();
        reply.ok(req.handle);
      }),

    opendir: (req, ino) =>
      this.run('opendir', req, async () => {
        await this.meta(req, 'opendir', { ino, caller: FrontEnd.caller(req) });
        reply.open(req.handle, { fh: 0 });
      }),

    readdir: (req, ino, size, offset) =>
      this.run('readdir', req, async () => {
        const rows = await this.meta(req, 'readdir', { ino, cookie: offset, limit: READDIR_BATCH });
        const entries: DirEntry[] = rows.map((d) => ({
          name: Buffer.from(d.name.buffer, d.name.byteOffset, d.name.byteLength),
          nextOffset: d.cookie,
          attr: inodeToAttr({
            ino: d.ino,
            mode: d.type & S_IFMT,
            uid: 0,
            gid: 0,
            nlink: 1,
            size: 0,
            rdev: 0,
            flags: 0,
            atimeNs: 0n,
            mtimeNs: 0n,
            ctimeNs: 0n,
            btimeNs: 0n,
            generation: 0,
          }),
        }));
        reply.dir(req.handle, false, size, entries);
      }),

    fsyncdir: (req) =>
      this.run('fsyncdir', req, async () => {
        await this.fsyncs.commit();
        reply.ok(req.handle);
      }),

    statfs: (req) =>
      this.run('statfs', req, async () => {
        const s = await this.meta(req, 'statfs', {});
        reply.statfs(req.handle, { ...s, files: s.files, favail: s.ffree, fsid: 0, flag: 0 });
      }),

    setxattr: (req, ino, name, value, flags) =>
      this.run('setxattr', req, async () => {
        this.refuseAclWithoutAcls(name);
        this.noXattrs.delete(ino);
        this.xattrWrites++;
        await this.meta(req, 'setxattr', { ino, name, value, flags, caller: FrontEnd.caller(req) });
        this.attrs.delete(ino);
        reply.ok(req.handle);
      }),

    getxattr: (req, ino, name, size) =>
      this.run('getxattr', req, async () => {
        this.refuseAclWithoutAcls(name);
        if (this.noXattrs.has(ino)) throw new ImapError('IMAP_E_NO_ATTR');
        const value = await this.knownXattrs(req, ino, () => this.meta(req, 'getxattr', { ino, name, size }));
        if (size === 0) reply.xattrSize(req.handle, value.byteLength);
        else reply.buf(req.handle, value);
      }),

    listxattr: (req, ino, size) =>
      this.run('listxattr', req, async () => {
        let list: Uint8Array = new Uint8Array(0);
        if (!this.noXattrs.has(ino)) {
          const before = this.xattrWrites;
          list = await this.meta(req, 'listxattr', { ino, size });
          if (list.byteLength === 0 && this.xattrWrites === before) this.markNoXattrs(ino);
        }
        if (size === 0) reply.xattrSize(req.handle, list.byteLength);
        else reply.buf(req.handle, list);
      }),

    removexattr: (req, ino, name) =>
      this.run('removexattr', req, async () => {
        this.refuseAclWithoutAcls(name);
        await this.meta(req, 'removexattr', { ino, name, caller: FrontEnd.caller(req) });
        this.attrs.delete(ino);
        reply.ok(req.handle);
      }),

    access: (req, ino, mask) =>
      this.run('access', req, async () => {
        await this.meta(req, 'access', { ino, mask, caller: FrontEnd.caller(req) });
        reply.ok(req.handle);
      }),

    create: (req, parent, name, mode) =>
      this.run('create', req, async () => {
        const inode = await this.meta(req, 'create', {
          parent,
          name,
          mode,
          caller: FrontEnd.caller(req),
          open: true,
        });
        this.namespaceChanged();
        // A new inode has no xattrs: spares the getxattr(security.capability) before its first write.
        this.markNoXattrs(inode.ino);
        this.dentries.set(this.dentryKey(parent, name), {
          value: inode.ino,
          expires: Date.now() + this.cacheMs,
        });
        reply.create(req.handle, this.entry(inode), { fh: this.nextFh++ });
      }),

    fallocate: (req, ino, mode, offset, length) =>
      this.run('fallocate', req, async () => {
        const FALLOC_FL_KEEP_SIZE = 1;
        if (mode & ~FALLOC_FL_KEEP_SIZE)
          throw new ImapError('IMAP_E_NOT_SUPPORTED', `fallocate mode ${mode}`);
        await this.writes.flushInode(ino);
        await this.meta(req, 'fallocate', {
          ino,
          offset,
          length,
          keepSize: (mode & FALLOC_FL_KEEP_SIZE) !== 0,
        });
        this.attrs.delete(ino);
        reply.ok(req.handle);
      }),
  };

  // ---- helpers of several ops --------------------------------------------------------------------------

  /**
   * Runs a getxattr/listxattr; when the answer is "no such attribute", asks once whether the inode
   * has any xattr at all and remembers it if not (see noXattrs).
   */
  private async knownXattrs<T>(req: FuseRequest<ReplyKind>, ino: number, body: () => Promise<T>): Promise<T> {
    const before = this.xattrWrites;
    try {
      return await body();
    } catch (err) {
      if (err instanceof ImapError && err.code === 'IMAP_E_NO_ATTR') {
        const list = await this.meta(req, 'listxattr', { ino, size: 0 });
        // A setxattr that ran meanwhile must win over this answer.
        if (list.byteLength === 0 && this.xattrWrites === before) this.markNoXattrs(ino);
      }
      throw err;
    }
  }

  /**
   * Without `fuse.acl` the kernel does not interpret system.posix_acl_* and passes them here as plain
   * xattrs. Storing them would tell `cp -a`/`setfacl` that an ACL (and with it the mode) was applied
   * when it was not; refuse them as a noacl ext4 does, so tools fall back to chmod.
   */
  private refuseAclWithoutAcls(name: Buffer): void {
    if (!this.deps.config.fuse.acl && name.subarray(0, POSIX_ACL_PREFIX.length).equals(POSIX_ACL_PREFIX)) {
      throw new ImapError('IMAP_E_NOT_SUPPORTED', 'POSIX ACLs are off (fuse.acl)');
    }
  }

  private markNoXattrs(ino: number): void {
    if (this.noXattrs.size >= NO_XATTR_MAX) this.noXattrs.clear();
    this.noXattrs.add(ino);
  }

  /** fsync's barrier: map data durable first, then the metadata that points at it. */
  async durablePoint(req: FuseRequest<ReplyKind> | null): Promise<number> {
    const caller = req ? FrontEnd.caller(req) : undefined;
    await this.scheduler.request('sync', {}, { priority: 'fsync', caller, idempotent: true });
    const { released } = await this.journal.request(
      'sync',
      {},
      { priority: 'fsync', caller, idempotent: true },
    );
    return released;
  }

  /** ENOSPC: a durable point releases clusters freed since the last one. Shared by concurrent callers. */
  private reclaiming: Promise<number> | null = null;
  private reclaim(): Promise<number> {
    this.reclaiming ??= this.durablePoint(null).finally(() => (this.reclaiming = null));
    return this.reclaiming;
  }

  private async truncate(
    req: FuseRequest<ReplyKind>,
    ino: number,
    size: number,
    caller: FsCaller & Caller,
  ): Promise<void> {
    if (this.deps.config.fuse.read_only) throw new ImapError('IMAP_E_READ_ONLY');
    await this.writes.flushInode(ino);
    await this.meta(req, 'checkTruncate', { ino, caller });
    const plan = await this.meta(req, 'prepareTruncate', { ino, size });
    let tailCrc: Uint8Array | null = null;
    try {
      tailCrc = await this.scheduler.request(
        'truncateTail',
        { plan },
        { priority: 'interactive', caller, idempotent: true },
      );
    } catch (err) {
      if (plan.tail) await this.meta(req, 'abortWrite', { plan: plan.tail });
      throw err;
    }
    await invalidateRuns(this.scheduler, plan.tail?.runs);
    this.remember(await this.meta(req, 'commitTruncate', { plan, tailCrc }));
  }
}

/** The setattr fields other than size (truncation runs first, through the data path). */
function setattrFields(values: SetAttrValues, toSet: number): FsSetAttr {
  const attr: FsSetAttr = {};
  if (toSet & SetAttr.MODE) attr.mode = values.mode;
  if (toSet & SetAttr.UID) attr.uid = values.uid;
  if (toSet & SetAttr.GID) attr.gid = values.gid;
  if (toSet & SetAttr.ATIME_NOW) attr.atimeNs = 'now';
  else if (toSet & SetAttr.ATIME) attr.atimeNs = tsToNs(values.atime);
  if (toSet & SetAttr.MTIME_NOW) attr.mtimeNs = 'now';
  else if (toSet & SetAttr.MTIME) attr.mtimeNs = tsToNs(values.mtime);
  if (toSet & SetAttr.CTIME) attr.ctimeNs = tsToNs(values.ctime);
  return attr;
}
