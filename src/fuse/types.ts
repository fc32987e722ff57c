/**
 * Types of the FUSE facade: the ops a filesystem implements (`LowLevelOps`), what each request
 * carries, and how it is answered. The shapes follow libfuse3's low-level API (fuse_lowlevel.h):
 * inode numbers, not paths; names and xattr values are bytes (`Buffer`), never decoded strings.
 *
 * Numbers: inode numbers, file handles, offsets and sizes travel as JS numbers, so they must stay
 * below 2^53. Errors are positive errno values (`os.constants.errno`).
 */

/** A point in time with nanoseconds, as the kernel stores it. */
export interface Timespec {
  sec: number;
  nsec: number;
}

/** Inode attributes (struct stat). `blksize` is a hint for the preferred I/O size. */
export interface Attr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blocks: number;
  blksize: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
}

/** What lookup, mknod, mkdir, symlink, link and create answer with. `ino` 0 caches a negative entry. */
export interface Entry {
  attr: Attr;
  /** Seconds the kernel may cache the name → inode mapping. Defaults to the session's entryTimeout. */
  entryTimeout?: number;
  /** Seconds the kernel may cache the attributes. Defaults to the session's attrTimeout. */
  attrTimeout?: number;
  generation?: number;
}

/** Bits of `OpenReply.flags` (fuse_file_info). */
export const OpenFlags = {
  DIRECT_IO: 1,
  KEEP_CACHE: 2,
  NONSEEKABLE: 4,
  CACHE_READDIR: 8,
  NOFLUSH: 16,
} as const;

export interface OpenReply {
  fh: number;
  /** OR of OpenFlags. */
  flags?: number;
}

/** struct statvfs. */
export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/** One directory entry for readdir/readdirplus. `nextOffset` is the offset of the entry after it. */
export interface DirEntry {
  name: Buffer;
  nextOffset: number;
  /** readdir uses only ino and mode (file type); readdirplus sends all of it as a lookup. */
  attr: Attr;
}

/** Bits of `to_set` in setattr (FUSE_SET_ATTR_*). */
export const SetAttr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  FORCE: 1 << 9,
  CTIME: 1 << 10,
  KILL_SUID: 1 << 11,
  KILL_SGID: 1 << 12,
  FILE: 1 << 13,
  KILL_PRIV: 1 << 14,
  OPEN: 1 << 15,
  TIMES_SET: 1 << 16,
  TOUCH: 1 << 17,
} as const;

/**
 * The new values of a setattr; only the fields whose bit is in `toSet` are meaningful.
 * `atime`/`mtime` are exact (UTIME_OMIT never reaches the fs: the bit is simply absent);
 * ATIME_NOW/MTIME_NOW ask the fs to use its own clock.
 */
export interface SetAttrValues {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
}

/** The kind of answer a request expects; `err` is always allowed. */
export type ReplyKind =
  | 'entry'
  | 'create'
  | 'attr'
  | 'readlink'
  | 'open'
  | 'buf'
  | 'write'
  | 'ok'
  | 'dir'
  | 'statfs'
  | 'xattr'
  | 'lseek';

declare const replyBrand: unique symbol;

/**
 * A request's handle: a plain number (safe to post to a worker thread) branded with the reply
 * kind it expects, so `reply.entry(h, …)` does not type-check for a read. A handle that arrived
 * through postMessage is re-branded with `asHandle<K>(n)`.
 */
export type ReqHandle<K extends ReplyKind> = number & { readonly [replyBrand]: K };

/** Who asked: fuse_req_ctx(). `pid` is the caller's thread id; `umask` is the caller's umask. */
export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
  umask: number;
}

export interface FuseRequest<K extends ReplyKind> extends RequestContext {
  readonly handle: ReqHandle<K>;
}

/** What the kernel agreed to at FUSE_INIT. */
export interface ConnInfo {
  protoMajor: number;
  protoMinor: number;
  capable: number;
  want: number;
  maxWrite: number;
  maxRead: number;
  maxReadahead: number;
}

/** Result of an op: ops may be async; a rejected promise or a throw is answered with its errno. */
export type OpResult = void | Promise<void>;

/**
 * The low-level ops. Each op answers exactly once, through `reply.*` with `req.handle` (from this
 * thread or from a worker: see docs/fuse-binding.md). Ops left out are answered by libfuse
 * (mostly ENOSYS, after which the kernel stops asking). Buffers passed in are valid until the
 * reply: copy what you keep (write data lives in a pooled receive buffer).
 */
export interface LowLevelOps {
  init?(conn: ConnInfo): void;
  /** The session ended: unmounted from outside, aborted, or closed. */
  destroy?(): void;
  lookup?(req: FuseRequest<'entry'>, parent: number, name: Buffer): OpResult;
  /** No reply: forget is answered by the binding. */
  forget?(ino: number, nlookup: number): void;
  getattr?(req: FuseRequest<'attr'>, ino: number, fh: number | null): OpResult;
  setattr?(
    req: FuseRequest<'attr'>,
    ino: number,
    values: SetAttrValues,
    toSet: number,
    fh: number | null,
  ): OpResult;
  readlink?(req: FuseRequest<'readlink'>, ino: number): OpResult;
  mknod?(req: FuseRequest<'entry'>, parent: number, name: Buffer, mode: number, rdev: number): OpResult;
  mkdir?(req: FuseRequest<'entry'>, parent: number, name: Buffer, mode: number): OpResult;
  unlink?(req: FuseRequest<'ok'>, parent: number, name: Buffer): OpResult;
  rmdir?(req: FuseRequest<'ok'>, parent: number, name: Buffer): OpResult;
  symlink?(req: FuseRequest<'entry'>, target: Buffer, parent: number, name: Buffer): OpResult;
  /** flags: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2). */
  rename?(
    req: FuseRequest<'ok'>,
    parent: number,
    name: Buffer,
    newParent: number,
    newName: Buffer,
    flags: number,
  ): OpResult;
  link?(req: FuseRequest<'entry'>, ino: number, newParent: number, newName: Buffer): OpResult;
  open?(req: FuseRequest<'open'>, ino: number, flags: number): OpResult;
  read?(req: FuseRequest<'buf'>, ino: number, size: number, offset: number, fh: number): OpResult;
  /** `data` is only valid until the reply. `writepage` is set for writeback-cache flushes. */
  write?(
    req: FuseRequest<'write'>,
    ino: number,
    data: Buffer,
    offset: number,
    fh: number,
    flags: number,
    writepage: boolean,
  ): OpResult;
  flush?(req: FuseRequest<'ok'>, ino: number, fh: number, lockOwner: number): OpResult;
  release?(req: FuseRequest<'ok'>, ino: number, fh: number, flags: number): OpResult;
  fsync?(req: FuseRequest<'ok'>, ino: number, datasync: boolean, fh: number): OpResult;
  opendir?(req: FuseRequest<'open'>, ino: number, flags: number): OpResult;
  readdir?(req: FuseRequest<'dir'>, ino: number, size: number, offset: number, fh: number): OpResult;
  /** Every entry sent (except . and ..) counts as a lookup: see `reply.dir`'s return value. */
  readdirplus?(req: FuseRequest<'dir'>, ino: number, size: number, offset: number, fh: number): OpResult;
  releasedir?(req: FuseRequest<'ok'>, ino: number, fh: number): OpResult;
  fsyncdir?(req: FuseRequest<'ok'>, ino: number, datasync: boolean, fh: number): OpResult;
  statfs?(req: FuseRequest<'statfs'>, ino: number): OpResult;
  /** flags: XATTR_CREATE (1), XATTR_REPLACE (2). */
  setxattr?(req: FuseRequest<'ok'>, ino: number, name: Buffer, value: Buffer, flags: number): OpResult;
  /** size 0: answer `reply.xattrSize`; value longer than size: ERANGE; else `reply.buf`. */
  getxattr?(req: FuseRequest<'xattr'>, ino: number, name: Buffer, size: number): OpResult;
  /** Same size rules as getxattr; the list is NUL-terminated names. */
  listxattr?(req: FuseRequest<'xattr'>, ino: number, size: number): OpResult;
  removexattr?(req: FuseRequest<'ok'>, ino: number, name: Buffer): OpResult;
  access?(req: FuseRequest<'ok'>, ino: number, mask: number): OpResult;
  create?(req: FuseRequest<'create'>, parent: number, name: Buffer, mode: number, flags: number): OpResult;
  /** mode: FALLOC_FL_KEEP_SIZE (1), FALLOC_FL_PUNCH_HOLE (2), … */
  fallocate?(
    req: FuseRequest<'ok'>,
    ino: number,
    mode: number,
    offset: number,
    length: number,
    fh: number,
  ): OpResult;
  copyFileRange?(
    req: FuseRequest<'write'>,
    inoIn: number,
    offIn: number,
    fhIn: number,
    inoOut: number,
    offOut: number,
    fhOut: number,
    length: number,
    flags: number,
  ): OpResult;
  /** whence: SEEK_DATA (3) or SEEK_HOLE (4); the kernel handles the others. */
  lseek?(req: FuseRequest<'lseek'>, ino: number, offset: number, whence: number, fh: number): OpResult;
}

export interface MountOptions {
  /** Largest write the kernel sends, bytes (≤ 1 MiB; max_pages is negotiated from it). Default 1 MiB. */
  maxWrite?: number;
  /** Kernel writeback cache (FUSE_CAP_WRITEBACK_CACHE). Off by default. */
  writebackCache?: boolean;
  /** POSIX ACLs (FUSE_CAP_POSIX_ACL): the kernel enforces system.posix_acl_* xattrs. Off by default. */
  posixAcl?: boolean;
  /**
   * FUSE_CAP_AUTO_INVAL_DATA: before a read whose cached attributes expired, the kernel asks
   * getattr to notice changes made behind its back. Off by default (the fs is the only writer).
   */
  autoInvalData?: boolean;
  allowOther?: boolean;
  /** Let the kernel check permissions from mode bits. Off by default: the fs checks. */
  defaultPermissions?: boolean;
  readOnly?: boolean;
  fsname?: string;
  subtype?: string;
  /** Default entry/attr timeouts (seconds) used when an Entry leaves them out. Default 1. */
  entryTimeout?: number;
  attrTimeout?: number;
  maxBackground?: number;
  congestionThreshold?: number;
  /** Extra raw `-o` options, e.g. ['max_read=131072']. */
  extraOptions?: string[];
  /** Keep the process alive while mounted (default true). */
  ref?: boolean;
}
