/**
 * Loads the native addon (build/Release/imapfs_fuse.node, found from the package root so it works
 * from src/ under tsx/ts-jest and from dist/ after tsc) and exposes the reply functions.
 *
 * `reply` works in any thread: a worker that imports this module loads its own instance of the
 * addon (it is context-aware), and the table of pending requests is process-wide, so a worker can
 * answer a request whose numeric handle it received by postMessage.
 */
import { constants as osConstants } from 'node:os';
import { findAddon, loadAddon } from '../native/addon';
import type { Attr, DirEntry, Entry, OpenReply, ReplyKind, ReqHandle, StatFs } from './types';

/** The native module's surface, exactly as imapfs_fuse.c exports it. */
export interface NativeBinding {
  mount(
    mountpoint: string,
    args: string[],
    ops: number[],
    config: {
      maxWrite?: number;
      writebackCache?: boolean;
      posixAcl?: boolean;
      autoInvalData?: boolean;
      maxBackground?: number;
      congestionThreshold?: number;
    },
    dispatch: (
      op: number,
      handle: number,
      uid: number,
      gid: number,
      pid: number,
      umask: number,
      ...args: unknown[]
    ) => void,
  ): NativeSession;
  close(session: NativeSession): boolean;
  ref(session: NativeSession, on: boolean): void;
  replyErr(h: number, errno: number): boolean;
  replyEntry(
    h: number,
    attr: Float64Array,
    entryTimeout: number,
    attrTimeout: number,
    generation: number,
  ): boolean;
  replyCreate(
    h: number,
    attr: Float64Array,
    entryTimeout: number,
    attrTimeout: number,
    generation: number,
    fh: number,
    openFlags: number,
  ): boolean;
  replyAttr(h: number, attr: Float64Array, attrTimeout: number): boolean;
  replyOpen(h: number, fh: number, openFlags: number): boolean;
  replyWrite(h: number, count: number): boolean;
  replyBuf(h: number, data: Uint8Array | null, offset?: number, length?: number): boolean;
  replyReadlink(h: number, target: Uint8Array): boolean;
  replyXattrSize(h: number, size: number): boolean;
  replyStatfs(h: number, values: Float64Array): boolean;
  replyLseek(h: number, offset: number): boolean;
  replyDir(
    h: number,
    plus: boolean,
    size: number,
    entries: Array<[Uint8Array, number, Float64Array]>,
    entryTimeout: number,
    attrTimeout: number,
  ): number;
  stats(): { chunks: number; pooled: number; pending: number };
  readonly opNames: readonly string[];
  readonly fuseVersion: number;
}

declare const nativeSessionBrand: unique symbol;
/** Opaque native session (a napi external). */
export type NativeSession = { readonly [nativeSessionBrand]: true };

/** Op codes, in the order of OP_NAMES in imapfs_fuse.c (checked when the addon loads). */
export const OP_NAMES = [
  'init',
  'destroy',
  'exit',
  'lookup',
  'forget',
  'forgetMulti',
  'getattr',
  'setattr',
  'readlink',
  'mknod',
  'mkdir',
  'unlink',
  'rmdir',
  'symlink',
  'rename',
  'link',
  'open',
  'read',
  'write',
  'flush',
  'release',
  'fsync',
  'opendir',
  'readdir',
  'readdirplus',
  'releasedir',
  'fsyncdir',
  'statfs',
  'setxattr',
  'getxattr',
  'listxattr',
  'removexattr',
  'access',
  'create',
  'fallocate',
  'copyFileRange',
  'lseek',
] as const;
export type OpName = (typeof OP_NAMES)[number];
export const OP: Record<OpName, number> = Object.fromEntries(OP_NAMES.map((n, i) => [n, i])) as Record<
  OpName,
  number
>;

function load(): NativeBinding {
  const native = loadAddon(findAddon('imapfs_fuse.node', 'IMAPFS_FUSE_BINDING')) as NativeBinding;
  if (native.opNames.join() !== OP_NAMES.join()) {
    throw new Error('imapfs_fuse.node does not match src/fuse/binding.ts (op table differs): rebuild it');
  }
  return native;
}

export const native: NativeBinding = load();

/** Attr → the Float64Array layout of imapfs_fuse.c (A_INO … A_CTIME_NS). */
export const ATTR_FIELDS = 15;

export function packAttr(a: Attr, out: Float64Array = new Float64Array(ATTR_FIELDS)): Float64Array {
  out[0] = a.ino;
  out[1] = a.mode;
  out[2] = a.nlink;
  out[3] = a.uid;
  out[4] = a.gid;
  out[5] = a.rdev;
  out[6] = a.size;
  out[7] = a.blocks;
  out[8] = a.blksize;
  out[9] = a.atime.sec;
  out[10] = a.atime.nsec;
  out[11] = a.mtime.sec;
  out[12] = a.mtime.nsec;
  out[13] = a.ctime.sec;
  out[14] = a.ctime.nsec;
  return out;
}

/** Re-brands a handle that arrived as a plain number (e.g. through postMessage). */
export function asHandle<K extends ReplyKind>(n: number): ReqHandle<K> {
  return n as ReqHandle<K>;
}

const scratch = new Float64Array(ATTR_FIELDS);
const statfsScratch = new Float64Array(11);
const defaults = { entryTimeout: 1, attrTimeout: 1 };

/** Default timeouts for replies that leave them out (per thread). */
export function setReplyDefaults(d: { entryTimeout?: number; attrTimeout?: number }): void {
  if (d.entryTimeout !== undefined) defaults.entryTimeout = d.entryTimeout;
  if (d.attrTimeout !== undefined) defaults.attrTimeout = d.attrTimeout;
}

/**
 * Answers requests by handle. Each returns true if it answered, false if the handle was stale
 * (already answered, or its session closed). Buffers are copied to the kernel before returning.
 */
export const reply = {
  /** A positive errno. */
  err(h: ReqHandle<ReplyKind>, errno: number): boolean {
    return native.replyErr(h, errno);
  },
  /** Success for ops whose answer is a bare status (unlink, release, setxattr, …). */
  ok(h: ReqHandle<'ok'>): boolean {
    return native.replyErr(h, 0);
  },
  entry(h: ReqHandle<'entry'>, e: Entry): boolean {
    return native.replyEntry(
      h,
      packAttr(e.attr, scratch),
      e.entryTimeout ?? defaults.entryTimeout,
      e.attrTimeout ?? defaults.attrTimeout,
      e.generation ?? 0,
    );
  },
  create(h: ReqHandle<'create'>, e: Entry, o: OpenReply): boolean {
    return native.replyCreate(
      h,
      packAttr(e.attr, scratch),
      e.entryTimeout ?? defaults.entryTimeout,
      e.attrTimeout ?? defaults.attrTimeout,
      e.generation ?? 0,
      o.fh,
      o.flags ?? 0,
    );
  },
  attr(h: ReqHandle<'attr'>, a: Attr, attrTimeout?: number): boolean {
    return native.replyAttr(h, packAttr(a, scratch), attrTimeout ?? defaults.attrTimeout);
  },
  readlink(h: ReqHandle<'readlink'>, target: Uint8Array): boolean {
    return native.replyReadlink(h, target);
  },
  open(h: ReqHandle<'open'>, o: OpenReply): boolean {
    return native.replyOpen(h, o.fh, o.flags ?? 0);
  },
  /** Read data, or a getxattr/listxattr value. `data` null sends an empty answer (EOF). */
  buf(h: ReqHandle<'buf' | 'xattr'>, data: Uint8Array | null, offset = 0, length?: number): boolean {
    return length === undefined ? native.replyBuf(h, data, offset) : native.replyBuf(h, data, offset, length);
  },
  write(h: ReqHandle<'write'>, count: number): boolean {
    return native.replyWrite(h, count);
  },
  /** The needed size, for a getxattr/listxattr with size 0. */
  xattrSize(h: ReqHandle<'xattr'>, size: number): boolean {
    return native.replyXattrSize(h, size);
  },
  statfs(h: ReqHandle<'statfs'>, s: StatFs): boolean {
    const f = statfsScratch;
    f[0] = s.bsize;
    f[1] = s.frsize;
    f[2] = s.blocks;
    f[3] = s.bfree;
    f[4] = s.bavail;
    f[5] = s.files;
    f[6] = s.ffree;
    f[7] = s.favail;
    f[8] = s.fsid;
    f[9] = s.flag;
    f[10] = s.namemax;
    return native.replyStatfs(h, f);
  },
  lseek(h: ReqHandle<'lseek'>, offset: number): boolean {
    return native.replyLseek(h, offset);
  },
  /**
   * Sends as many of `entries` as fit in `size` bytes and returns how many were sent (-1: stale
   * handle). For readdirplus (`plus`), each sent entry except . and .. is a lookup to count.
   */
  dir(
    h: ReqHandle<'dir'>,
    plus: boolean,
    size: number,
    entries: readonly DirEntry[],
    entryTimeout?: number,
    attrTimeout?: number,
  ): number {
    const packed: Array<[Uint8Array, number, Float64Array]> = entries.map((e) => [
      e.name,
      e.nextOffset,
      packAttr(e.attr),
    ]);
    return native.replyDir(
      h,
      plus,
      size,
      packed,
      entryTimeout ?? defaults.entryTimeout,
      attrTimeout ?? defaults.attrTimeout,
    );
  },
};

/** errno of anything an op threw: `{ errno }` (positive), a Node system error's code, else EIO. */
export function errnoOf(err: unknown): number {
  if (typeof err === 'object' && err !== null) {
    const e = err as { errno?: unknown; code?: unknown };
    if (typeof e.code === 'string' && e.code in osConstants.errno) {
      return osConstants.errno[e.code as keyof typeof osConstants.errno];
    }
    if (typeof e.errno === 'number' && e.errno !== 0) return Math.abs(e.errno);
  }
  return osConstants.errno.EIO;
}
