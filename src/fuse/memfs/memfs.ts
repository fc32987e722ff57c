/**
 * An in-memory POSIX filesystem: the binding's example and the "null" ceiling of the benchmarks.
 *
 * Two layers:
 *   - `MemFs`: inode-level semantics (names are bytes, errors are positive errnos thrown as
 *     `FsErrno`), independent of any FUSE binding, so a comparison can drive the same logic
 *     through another binding (perf/fuse-binding-compare does, through fuse-native).
 *   - `memFsOps(fs)`: the `LowLevelOps` that answer kernel requests from it.
 *
 * Inode lifetime: an inode lives while it has a name (nlink > 0), a kernel lookup reference
 * (nlookup > 0) or an open handle; the last of the three to go frees it and its data chunks.
 * File data lives in 1 MiB chunks taken from a pool and given back on truncate/free: fresh memory
 * is expensive here (first touch of a page ~15 µs), reused memory is not.
 */
import { constants as osConstants } from 'node:os';
import { reply } from '../binding';
import type {
  Attr,
  DirEntry,
  FuseRequest,
  LowLevelOps,
  ReplyKind,
  ReqHandle,
  SetAttrValues,
  Timespec,
} from '../types';
import { SetAttr } from '../types';

const E = osConstants.errno;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_ISGID = 0o2000;
const NAME_MAX = 255;
const PATH_MAX = 4096;
const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const O_ACCMODE = 3;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
const MAX_FILE_SIZE = 2 ** 44; // 16 TiB: keeps chunk indices and offsets exact in doubles

export const CHUNK = 1024 * 1024;

/** A positive errno, thrown without a stack (cheap on hot paths such as a negative lookup). */
export class FsErrno {
  constructor(readonly errno: number) {}
}
const errs = new Map<number, FsErrno>();
function fail(errno: number): never {
  let e = errs.get(errno);
  if (!e) errs.set(errno, (e = new FsErrno(errno)));
  throw e;
}

/** Reused 1 MiB chunks. A chunk handed out by `take` is zero-filled unless the caller overwrites it whole. */
export class ChunkPool {
  private readonly free: Buffer[] = [];
  constructor(private readonly keep: number) {}
  take(zero: boolean): Buffer {
    const c = this.free.pop();
    if (!c) return Buffer.alloc(CHUNK);
    if (zero) c.fill(0);
    return c;
  }
  give(c: Buffer): void {
    if (this.free.length < this.keep) this.free.push(c);
  }
  get pooled(): number {
    return this.free.length;
  }
}

export interface Inode {
  readonly ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  /** Directories: name (latin1 of the bytes) → ino, in creation order. */
  children: Map<string, number> | null;
  /** Directories: the parent's ino (root: itself). */
  parent: number;
  /** Regular files: chunk index → 1 MiB chunk; a missing chunk reads as zeros. */
  chunks: Map<number, Buffer> | null;
  target: Buffer | null;
  xattrs: Map<string, Buffer> | null;
  nlookup: number;
  opens: number;
}

function now(): Timespec {
  const ms = performance.timeOrigin + performance.now();
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6)) };
}

const key = (name: Buffer): string => name.toString('latin1');
const isDir = (i: Inode): boolean => (i.mode & S_IFMT) === S_IFDIR;

function checkName(name: Buffer): void {
  if (name.length > NAME_MAX) fail(E.ENAMETOOLONG);
  if (name.length === 0) fail(E.ENOENT);
}

interface OpenFile {
  ino: number;
  flags: number;
}

interface OpenDir {
  ino: number;
  /** Snapshot taken at offset 0: [name, ino]; offsets index into it (+1), so no entry is skipped or repeated. */
  entries: Array<[Buffer, number]> | null;
}

export class MemFs {
  readonly pool: ChunkPool;
  private readonly inodes = new Map<number, Inode>();
  private readonly files = new Map<number, OpenFile>();
  private readonly dirs = new Map<number, OpenDir>();
  private nextIno = 2;
  private nextFh = 1;
  private readScratch = Buffer.alloc(0);

  constructor(opts: { uid?: number; gid?: number; poolChunks?: number } = {}) {
    this.pool = new ChunkPool(opts.poolChunks ?? 4096);
    const t = now();
    this.inodes.set(1, this.newInode(1, S_IFDIR | 0o755, opts.uid ?? 0, opts.gid ?? 0, 1, t));
    const root = this.inodes.get(1)!;
    root.nlink = 2;
    root.nlookup = Infinity;
  }

  private newInode(ino: number, mode: number, uid: number, gid: number, parent: number, t: Timespec): Inode {
    const dir = (mode & S_IFMT) === S_IFDIR;
    return {
      ino,
      mode,
      nlink: dir ? 2 : 1,
      uid,
      gid,
      rdev: 0,
      size: 0,
      atime: t,
      mtime: t,
      ctime: t,
      children: dir ? new Map() : null,
      parent,
      chunks: (mode & S_IFMT) === S_IFREG ? new Map() : null,
      target: null,
      xattrs: null,
      nlookup: 0,
      opens: 0,
    };
  }

  get inodeCount(): number {
    return this.inodes.size;
  }

  inode(ino: number): Inode {
    const i = this.inodes.get(ino);
    if (!i) fail(E.ENOENT);
    return i;
  }

  private dir(ino: number): Inode {
    const d = this.inode(ino);
    if (!d.children) fail(E.ENOTDIR);
    return d;
  }

  attr(i: Inode): Attr {
    const blocks = i.chunks ? i.chunks.size * (CHUNK / 512) : Math.ceil(i.size / 512);
    return {
      ino: i.ino,
      mode: i.mode,
      nlink: i.nlink,
      uid: i.uid,
      gid: i.gid,
      rdev: i.rdev,
      size: i.size,
      blocks: Math.min(blocks, Math.ceil(i.size / 512)),
      blksize: 4096,
      atime: i.atime,
      mtime: i.mtime,
      ctime: i.ctime,
    };
  }

  /** Frees the inode once it has no name, no kernel reference and no open handle. */
  private maybeFree(i: Inode): void {
    if (i.nlink > 0 || i.nlookup > 0 || i.opens > 0 || i.ino === 1) return;
    if (i.chunks) for (const c of i.chunks.values()) this.pool.give(c);
    this.inodes.delete(i.ino);
  }

  // ---- names ----

  lookup(parent: number, name: Buffer): Inode {
    checkName(name);
    const d = this.dir(parent);
    const ino = d.children!.get(key(name));
    if (ino === undefined) fail(E.ENOENT);
    return this.inode(ino);
  }

  /** The kernel took a reference (lookup/create/mkdir/… answered, or a readdirplus entry). */
  ref(i: Inode, n = 1): void {
    i.nlookup += n;
  }

  forget(ino: number, n: number): void {
    const i = this.inodes.get(ino);
    if (!i || ino === 1) return;
    i.nlookup = Math.max(0, i.nlookup - n);
    this.maybeFree(i);
  }

  private touchDir(d: Inode, t: Timespec): void {
    d.mtime = t;
    d.ctime = t;
  }

  /** Creates any kind of node (mode carries the type). */
  mknod(parent: number, name: Buffer, mode: number, rdev: number, uid: number, gid: number): Inode {
    checkName(name);
    const d = this.dir(parent);
    const k = key(name);
    if (d.children!.has(k)) fail(E.EEXIST);
    const t = now();
    const setgid = (d.mode & S_ISGID) !== 0;
    let m = mode;
    if (setgid && (mode & S_IFMT) === S_IFDIR) m |= S_ISGID;
    const i = this.newInode(this.nextIno++, m, uid, setgid ? d.gid : gid, parent, t);
    i.rdev = rdev;
    this.inodes.set(i.ino, i);
    d.children!.set(k, i.ino);
    if (isDir(i)) d.nlink++;
    this.touchDir(d, t);
    return i;
  }

  symlink(target: Buffer, parent: number, name: Buffer, uid: number, gid: number): Inode {
    if (target.length >= PATH_MAX) fail(E.ENAMETOOLONG);
    const i = this.mknod(parent, name, S_IFLNK | 0o777, 0, uid, gid);
    i.target = Buffer.from(target);
    i.size = target.length;
    return i;
  }

  readlink(ino: number): Buffer {
    const i = this.inode(ino);
    if (!i.target) fail(E.EINVAL);
    return i.target;
  }

  link(ino: number, newParent: number, newName: Buffer): Inode {
    checkName(newName);
    const i = this.inode(ino);
    if (isDir(i)) fail(E.EPERM);
    const d = this.dir(newParent);
    const k = key(newName);
    if (d.children!.has(k)) fail(E.EEXIST);
    const t = now();
    d.children!.set(k, ino);
    i.nlink++;
    i.ctime = t;
    this.touchDir(d, t);
    return i;
  }

  unlink(parent: number, name: Buffer): void {
    checkName(name);
    const d = this.dir(parent);
    const k = key(name);
    const ino = d.children!.get(k);
    if (ino === undefined) fail(E.ENOENT);
    const i = this.inode(ino);
    if (isDir(i)) fail(E.EISDIR);
    const t = now();
    d.children!.delete(k);
    i.nlink--;
    i.ctime = t;
    this.touchDir(d, t);
    this.maybeFree(i);
  }

  rmdir(parent: number, name: Buffer): void {
    checkName(name);
    const d = this.dir(parent);
    const k = key(name);
    const ino = d.children!.get(k);
    if (ino === undefined) fail(E.ENOENT);
    const i = this.inode(ino);
    if (!isDir(i)) fail(E.ENOTDIR);
    if (i.children!.size > 0) fail(E.ENOTEMPTY);
    const t = now();
    d.children!.delete(k);
    d.nlink--;
    i.nlink = 0;
    i.ctime = t;
    this.touchDir(d, t);
    this.maybeFree(i);
  }

  private isAncestor(anc: number, ino: number): boolean {
    for (let cur = ino; ;) {
      if (cur === anc) return true;
      if (cur === 1) return false;
      cur = this.inode(cur).parent;
    }
  }

  rename(parent: number, name: Buffer, newParent: number, newName: Buffer, flags: number): void {
    checkName(name);
    checkName(newName);
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) fail(E.EINVAL);
    if (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE) fail(E.EINVAL);
    const sd = this.dir(parent);
    const td = this.dir(newParent);
    const sk = key(name);
    const tk = key(newName);
    const sino = sd.children!.get(sk);
    if (sino === undefined) fail(E.ENOENT);
    const src = this.inode(sino);
    const tino = td.children!.get(tk);
    const tgt = tino === undefined ? null : this.inode(tino);
    if (isDir(src) && this.isAncestor(sino, newParent)) fail(E.EINVAL);
    const t = now();
    if (flags & RENAME_EXCHANGE) {
      if (!tgt) fail(E.ENOENT);
      if (isDir(tgt) && this.isAncestor(tgt.ino, parent)) fail(E.EINVAL);
      sd.children!.set(sk, tgt.ino);
      td.children!.set(tk, src.ino);
      if (isDir(src) !== isDir(tgt) && sd !== td) {
        const [dsrc, ddst] = isDir(src) ? [sd, td] : [td, sd];
        dsrc.nlink--;
        ddst.nlink++;
      }
      if (isDir(src)) src.parent = newParent;
      if (isDir(tgt)) tgt.parent = parent;
      src.ctime = t;
      tgt.ctime = t;
      this.touchDir(sd, t);
      this.touchDir(td, t);
      return;
    }
    if (tgt) {
      if (tgt === src) return; // two names of one inode: POSIX says do nothing
      if (flags & RENAME_NOREPLACE) fail(E.EEXIST);
      if (isDir(src)) {
        if (!isDir(tgt)) fail(E.ENOTDIR);
        if (tgt.children!.size > 0) fail(E.ENOTEMPTY);
      } else if (isDir(tgt)) {
        fail(E.EISDIR);
      }
    }
    if (tgt) {
      if (isDir(tgt)) {
        td.nlink--;
        tgt.nlink = 0;
      } else {
        tgt.nlink--;
      }
      tgt.ctime = t;
    }
    sd.children!.delete(sk);
    td.children!.set(tk, sino);
    if (isDir(src) && sd !== td) {
      sd.nlink--;
      td.nlink++;
      src.parent = newParent;
    }
    src.ctime = t;
    this.touchDir(sd, t);
    this.touchDir(td, t);
    if (tgt) this.maybeFree(tgt);
  }

  // ---- attributes ----

  setattr(ino: number, v: SetAttrValues, toSet: number): Inode {
    const i = this.inode(ino);
    const t = now();
    if (toSet & SetAttr.SIZE) {
      if (!i.chunks) fail(isDir(i) ? E.EISDIR : E.EINVAL);
      this.truncate(i, v.size);
      i.mtime = t;
    }
    if (toSet & SetAttr.MODE) i.mode = (i.mode & S_IFMT) | (v.mode & 0o7777);
    if (toSet & SetAttr.UID) i.uid = v.uid;
    if (toSet & SetAttr.GID) i.gid = v.gid;
    if (toSet & SetAttr.ATIME_NOW) i.atime = t;
    else if (toSet & SetAttr.ATIME) i.atime = { ...v.atime };
    if (toSet & SetAttr.MTIME_NOW) i.mtime = t;
    else if (toSet & SetAttr.MTIME) i.mtime = { ...v.mtime };
    i.ctime = toSet & SetAttr.CTIME ? { ...v.ctime } : t;
    return i;
  }

  // ---- data ----

  private truncate(i: Inode, size: number): void {
    if (size > MAX_FILE_SIZE) fail(E.EFBIG);
    const chunks = i.chunks!;
    if (size < i.size) {
      const keep = Math.ceil(size / CHUNK);
      for (const [idx, c] of chunks) {
        if (idx >= keep) {
          chunks.delete(idx);
          this.pool.give(c);
        }
      }
      const tail = size % CHUNK;
      const last = chunks.get(Math.floor(size / CHUNK));
      if (tail && last) last.fill(0, tail);
    }
    i.size = size;
  }

  private zeroRange(i: Inode, off: number, len: number): void {
    const chunks = i.chunks!;
    const end = Math.min(off + len, i.size);
    for (let pos = off; pos < end;) {
      const idx = Math.floor(pos / CHUNK);
      const start = pos - idx * CHUNK;
      const n = Math.min(CHUNK - start, end - pos);
      const c = chunks.get(idx);
      if (c) {
        if (n === CHUNK) {
          chunks.delete(idx);
          this.pool.give(c);
        } else {
          c.fill(0, start, start + n);
        }
      }
      pos += n;
    }
  }

  write(ino: number, data: Buffer, off: number): number {
    const i = this.inode(ino);
    if (!i.chunks) fail(E.EINVAL);
    const len = data.length;
    if (off + len > MAX_FILE_SIZE) fail(E.EFBIG);
    const chunks = i.chunks;
    for (let done = 0; done < len;) {
      const pos = off + done;
      const idx = Math.floor(pos / CHUNK);
      const start = pos - idx * CHUNK;
      const n = Math.min(CHUNK - start, len - done);
      let c = chunks.get(idx);
      if (!c) chunks.set(idx, (c = this.pool.take(n !== CHUNK)));
      data.copy(c, start, done, done + n);
      done += n;
    }
    if (off + len > i.size) i.size = off + len;
    const t = now();
    i.mtime = t;
    i.ctime = t;
    return len;
  }

  /**
   * Returns the bytes at [off, off+size) clipped to EOF, as a view that is valid until the next
   * read (a chunk subarray when the range lies in one chunk, else a shared scratch buffer).
   */
  read(ino: number, size: number, off: number): Buffer {
    const i = this.inode(ino);
    if (!i.chunks) fail(isDir(i) ? E.EISDIR : E.EINVAL);
    const end = Math.min(off + size, i.size);
    if (end <= off) return Buffer.alloc(0);
    const len = end - off;
    const idx = Math.floor(off / CHUNK);
    const start = off - idx * CHUNK;
    if (start + len <= CHUNK) {
      const c = i.chunks.get(idx);
      if (c) return c.subarray(start, start + len);
    }
    if (this.readScratch.length < len) this.readScratch = Buffer.alloc(Math.max(len, CHUNK));
    const out = this.readScratch.subarray(0, len);
    for (let done = 0; done < len;) {
      const pos = off + done;
      const ci = Math.floor(pos / CHUNK);
      const s = pos - ci * CHUNK;
      const n = Math.min(CHUNK - s, len - done);
      const c = i.chunks.get(ci);
      if (c) c.copy(out, done, s, s + n);
      else out.fill(0, done, done + n);
      done += n;
    }
    return out;
  }

  fallocate(ino: number, mode: number, off: number, len: number): void {
    const i = this.inode(ino);
    if (!i.chunks) fail(isDir(i) ? E.EISDIR : E.ENODEV);
    if (off < 0 || len <= 0) fail(E.EINVAL);
    if (off + len > MAX_FILE_SIZE) fail(E.EFBIG);
    const keepSize = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
    const op = mode & ~FALLOC_FL_KEEP_SIZE;
    const t = now();
    if (op === FALLOC_FL_PUNCH_HOLE) {
      if (!keepSize) fail(E.EOPNOTSUPP);
      this.zeroRange(i, off, len);
    } else if (op === FALLOC_FL_ZERO_RANGE) {
      this.zeroRange(i, off, len);
      if (!keepSize && off + len > i.size) i.size = off + len;
    } else if (op === 0) {
      if (!keepSize && off + len > i.size) i.size = off + len;
    } else {
      fail(E.EOPNOTSUPP);
    }
    i.mtime = t;
    i.ctime = t;
  }

  lseek(ino: number, off: number, whence: number): number {
    const i = this.inode(ino);
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) fail(E.EINVAL);
    if (off >= i.size) fail(E.ENXIO);
    return whence === SEEK_DATA ? off : i.size;
  }

  copyFileRange(inoIn: number, offIn: number, inoOut: number, offOut: number, len: number): number {
    const data = Buffer.from(this.read(inoIn, Math.min(len, 16 * CHUNK), offIn));
    return data.length ? this.write(inoOut, data, offOut) : 0;
  }

  // ---- handles ----

  open(ino: number, flags: number): number {
    const i = this.inode(ino);
    if (isDir(i) && (flags & O_ACCMODE) !== 0) fail(E.EISDIR);
    // FUSE_CAP_ATOMIC_O_TRUNC (on by default): O_TRUNC arrives here instead of as a setattr.
    if (flags & O_TRUNC && i.chunks && (flags & O_ACCMODE) !== 0) {
      this.truncate(i, 0);
      const t = now();
      i.mtime = t;
      i.ctime = t;
    }
    i.opens++;
    const fh = this.nextFh++;
    this.files.set(fh, { ino, flags });
    return fh;
  }

  release(fh: number): void {
    const f = this.files.get(fh);
    if (!f) return;
    this.files.delete(fh);
    const i = this.inodes.get(f.ino);
    if (i) {
      i.opens--;
      this.maybeFree(i);
    }
  }

  create(
    parent: number,
    name: Buffer,
    mode: number,
    flags: number,
    uid: number,
    gid: number,
  ): [Inode, number] {
    checkName(name);
    const d = this.dir(parent);
    const existing = d.children!.get(key(name));
    let i: Inode;
    if (existing !== undefined) {
      if (flags & O_EXCL) fail(E.EEXIST);
      i = this.inode(existing);
    } else {
      i = this.mknod(parent, name, S_IFREG | (mode & 0o7777), 0, uid, gid);
    }
    return [i, this.open(i.ino, flags)];
  }

  opendir(ino: number): number {
    this.dir(ino);
    const fh = this.nextFh++;
    this.dirs.set(fh, { ino, entries: null });
    return fh;
  }

  releasedir(fh: number): void {
    this.dirs.delete(fh);
  }

  /** Entries from `offset` on, with the offset of the next one; . and .. first. */
  readdir(
    fh: number,
    ino: number,
    offset: number,
    max: number,
  ): Array<{ name: Buffer; ino: number; next: number }> {
    let h = this.dirs.get(fh);
    if (!h) {
      h = { ino, entries: null };
      this.dirs.set(fh, h);
    }
    const d = this.dir(h.ino);
    if (offset === 0 || !h.entries) {
      const list: Array<[Buffer, number]> = [
        [Buffer.from('.'), d.ino],
        [Buffer.from('..'), d.parent],
      ];
      for (const [k, v] of d.children!) list.push([Buffer.from(k, 'latin1'), v]);
      h.entries = list;
    }
    const out: Array<{ name: Buffer; ino: number; next: number }> = [];
    for (let idx = offset; idx < h.entries.length && out.length < max; idx++) {
      const [name, eino] = h.entries[idx]!;
      if (idx >= 2 && !this.inodes.has(eino)) continue;
      out.push({ name, ino: eino, next: idx + 1 });
    }
    return out;
  }

  // ---- xattrs ----

  getxattr(ino: number, name: Buffer): Buffer {
    const v = this.inode(ino).xattrs?.get(key(name));
    if (!v) fail(E.ENODATA);
    return v;
  }

  listxattr(ino: number): Buffer {
    const x = this.inode(ino).xattrs;
    if (!x || x.size === 0) return Buffer.alloc(0);
    return Buffer.concat([...x.keys()].map((k) => Buffer.from(`${k}\0`, 'latin1')));
  }

  setxattr(ino: number, name: Buffer, value: Buffer, flags: number): void {
    if (name.length === 0 || name.length > XATTR_NAME_MAX) fail(E.ERANGE);
    if (value.length > XATTR_SIZE_MAX) fail(E.E2BIG);
    const i = this.inode(ino);
    const k = key(name);
    const has = i.xattrs?.has(k) ?? false;
    if (flags & XATTR_CREATE && has) fail(E.EEXIST);
    if (flags & XATTR_REPLACE && !has) fail(E.ENODATA);
    (i.xattrs ??= new Map()).set(k, Buffer.from(value));
    i.ctime = now();
  }

  removexattr(ino: number, name: Buffer): void {
    const i = this.inode(ino);
    if (!i.xattrs?.delete(key(name))) fail(E.ENODATA);
    i.ctime = now();
  }

  access(ino: number, mask: number, uid: number, gid: number): void {
    const i = this.inode(ino);
    if (mask === 0 || uid === 0) {
      if (uid === 0 && mask & 1 && !isDir(i) && (i.mode & 0o111) === 0) fail(E.EACCES);
      return;
    }
    const bits = uid === i.uid ? (i.mode >> 6) & 7 : gid === i.gid ? (i.mode >> 3) & 7 : i.mode & 7;
    if ((bits & mask) !== mask) fail(E.EACCES);
  }

  statfs(): { files: number; used: number } {
    let used = 0;
    for (const i of this.inodes.values()) if (i.chunks) used += i.chunks.size;
    return { files: this.inodes.size, used };
  }
}

/** Answers an op's failure: FsErrno → its errno; anything else is a bug → EIO (and rethrown). */
function failWith(h: ReqHandle<ReplyKind>, err: unknown): void {
  if (err instanceof FsErrno) {
    reply.err(h, err.errno);
    return;
  }
  reply.err(h, E.EIO);
  throw err;
}

/** The LowLevelOps of a MemFs. Every op answers synchronously. */
export function memFsOps(fs: MemFs): LowLevelOps {
  const entry = (i: Inode) => {
    fs.ref(i);
    return { attr: fs.attr(i) };
  };
  const dirReply = (
    req: FuseRequest<'dir'>,
    plus: boolean,
    ino: number,
    size: number,
    offset: number,
    fh: number,
  ): void => {
    // A dirent takes at least 24 bytes (32+ for readdirplus, 150+ with its attr).
    const list = fs.readdir(fh, ino, offset, Math.ceil(size / (plus ? 150 : 24)) + 1);
    const entries: DirEntry[] = [];
    for (const e of list) {
      const i = fs.inode(e.ino);
      entries.push({ name: e.name, nextOffset: e.next, attr: fs.attr(i) });
    }
    const sent = reply.dir(req.handle, plus, size, entries);
    if (plus) {
      for (let k = 0; k < sent; k++) {
        const e = list[k]!;
        const n = e.name;
        const dot = n.length <= 2 && n[0] === 0x2e && (n.length === 1 || n[1] === 0x2e);
        if (!dot) fs.ref(fs.inode(e.ino));
      }
    }
  };
  return {
    forget: (ino, n) => fs.forget(ino, n),
    lookup(req, parent, name) {
      try {
        reply.entry(req.handle, entry(fs.lookup(parent, name)));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    getattr(req, ino) {
      try {
        reply.attr(req.handle, fs.attr(fs.inode(ino)));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    setattr(req, ino, values, toSet) {
      try {
        reply.attr(req.handle, fs.attr(fs.setattr(ino, values, toSet)));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    readlink(req, ino) {
      try {
        reply.readlink(req.handle, fs.readlink(ino));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    mknod(req, parent, name, mode, rdev) {
      try {
        reply.entry(req.handle, entry(fs.mknod(parent, name, mode, rdev, req.uid, req.gid)));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    mkdir(req, parent, name, mode) {
      try {
        reply.entry(
          req.handle,
          entry(fs.mknod(parent, name, S_IFDIR | (mode & 0o7777), 0, req.uid, req.gid)),
        );
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    unlink(req, parent, name) {
      try {
        fs.unlink(parent, name);
        reply.ok(req.handle);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    rmdir(req, parent, name) {
      try {
        fs.rmdir(parent, name);
        reply.ok(req.handle);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    symlink(req, target, parent, name) {
      try {
        reply.entry(req.handle, entry(fs.symlink(target, parent, name, req.uid, req.gid)));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    rename(req, parent, name, newParent, newName, flags) {
      try {
        fs.rename(parent, name, newParent, newName, flags);
        reply.ok(req.handle);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    link(req, ino, newParent, newName) {
      try {
        reply.entry(req.handle, entry(fs.link(ino, newParent, newName)));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    open(req, ino, flags) {
      try {
        reply.open(req.handle, { fh: fs.open(ino, flags) });
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    read(req, ino, size, offset) {
      try {
        reply.buf(req.handle, fs.read(ino, size, offset));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    write(req, ino, data, offset) {
      try {
        reply.write(req.handle, fs.write(ino, data, offset));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    flush(req) {
      reply.ok(req.handle);
    },
    release(req, _ino, fh) {
      fs.release(fh);
      reply.ok(req.handle);
    },
    fsync(req) {
      reply.ok(req.handle);
    },
    opendir(req, ino) {
      try {
        reply.open(req.handle, { fh: fs.opendir(ino) });
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    readdir(req, ino, size, offset, fh) {
      try {
        dirReply(req, false, ino, size, offset, fh);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    readdirplus(req, ino, size, offset, fh) {
      try {
        dirReply(req, true, ino, size, offset, fh);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    releasedir(req, _ino, fh) {
      fs.releasedir(fh);
      reply.ok(req.handle);
    },
    fsyncdir(req) {
      reply.ok(req.handle);
    },
    statfs(req) {
      const s = fs.statfs();
      const blocks = 1 << 24; // 16 TiB of 1 MiB blocks
      reply.statfs(req.handle, {
        bsize: CHUNK,
        frsize: CHUNK,
        blocks,
        bfree: blocks - s.used,
        bavail: blocks - s.used,
        files: 1 << 30,
        ffree: (1 << 30) - s.files,
        favail: (1 << 30) - s.files,
        fsid: 0,
        flag: 0,
        namemax: NAME_MAX,
      });
    },
    setxattr(req, ino, name, value, flags) {
      try {
        fs.setxattr(ino, name, value, flags);
        reply.ok(req.handle);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    getxattr(req, ino, name, size) {
      try {
        const v = fs.getxattr(ino, name);
        if (size === 0) reply.xattrSize(req.handle, v.length);
        else if (v.length > size) reply.err(req.handle, E.ERANGE);
        else reply.buf(req.handle, v);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    listxattr(req, ino, size) {
      try {
        const v = fs.listxattr(ino);
        if (size === 0) reply.xattrSize(req.handle, v.length);
        else if (v.length > size) reply.err(req.handle, E.ERANGE);
        else reply.buf(req.handle, v);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    removexattr(req, ino, name) {
      try {
        fs.removexattr(ino, name);
        reply.ok(req.handle);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    access(req, ino, mask) {
      try {
        fs.access(ino, mask, req.uid, req.gid);
        reply.ok(req.handle);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    create(req, parent, name, mode, flags) {
      try {
        const [i, fh] = fs.create(parent, name, mode, flags, req.uid, req.gid);
        reply.create(req.handle, entry(i), { fh });
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    fallocate(req, ino, mode, offset, length) {
      try {
        fs.fallocate(ino, mode, offset, length);
        reply.ok(req.handle);
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    copyFileRange(req, inoIn, offIn, _fhIn, inoOut, offOut, _fhOut, length) {
      try {
        reply.write(req.handle, fs.copyFileRange(inoIn, offIn, inoOut, offOut, length));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
    lseek(req, ino, offset, whence) {
      try {
        reply.lseek(req.handle, fs.lseek(ino, offset, whence));
      } catch (err) {
        failWith(req.handle, err);
      }
    },
  };
}
