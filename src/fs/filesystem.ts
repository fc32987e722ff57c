/**
 * FileSystem: POSIX semantics over the MetadataStore. Used in-process by the CLI, and inside the
 * daemon's journal actor (which owns the store). Every method is synchronous and every mutation is
 * one store transaction, so a crash leaves each operation either done or not.
 *
 * Ownership: one FileSystem per store, on the store's thread. The open-file counts (for orphans:
 * unlinked but still open) are in memory; inodes with nlink 0 found at the next mount are orphans of
 * a crash and are destroyed by `cleanOrphans`.
 */
import { ImapError } from '../protocol/errors';
import { type Caller, ROOT_CALLER, checkAccess, checkSticky, inGroup, isOwnerOrRoot } from './access';
import { ClusterAllocator, type GrowMap } from './allocator';
import { DataPath, type ReadPlan, type TruncatePlan, type WritePlan } from './data-path';
import { ExtentMap } from './extent-map';
import {
  PERM_MASK,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_ISGID,
  S_ISUID,
  W_OK,
  X_OK,
  isDir,
  isLnk,
  isValidType,
} from './modes';
import type { MetadataStore } from './store';
import {
  CLUSTER_SIZE,
  type Inode,
  NAME_MAX,
  ROOT_INO,
  XATTR_NAME_MAX,
  XATTR_VALUE_MAX,
  nowNs,
} from './types';

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

/** Symlink targets up to PATH_MAX. */
const SYMLINK_MAX = 4096;

export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** 'now' = the current time (utimensat UTIME_NOW). */
  atimeNs?: bigint | 'now';
  mtimeNs?: bigint | 'now';
  ctimeNs?: bigint;
}

export interface DirEntry {
  name: Buffer;
  ino: number;
  type: number;
  /** Pass back to readdir to continue after this entry. */
  cookie: number;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namemax: number;
}

export interface FileSystemOptions {
  grow?: GrowMap;
  /** Check permission bits (off when the kernel does it with default_permissions). */
  enforcePermissions?: boolean;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

export class FileSystem {
  readonly store: MetadataStore;
  readonly allocator: ClusterAllocator;
  readonly extents: ExtentMap;
  private readonly data: DataPath;
  private readonly enforce: boolean;

  constructor(store: MetadataStore, options: FileSystemOptions = {}) {
    this.store = store;
    this.allocator = new ClusterAllocator(store, { grow: options.grow });
    this.extents = new ExtentMap(store, this.allocator);
    this.data = new DataPath(store, this.allocator, this.extents);
    this.enforce = options.enforcePermissions ?? true;
  }

  /** Creates the root directory of an empty store (mkfs). */
  static format(store: MetadataStore, root: { uid: number; gid: number; mode?: number }): void {
    const t = nowNs();
    store.transaction(() => {
      store.insertInodeWithIno({
        ino: ROOT_INO,
        mode: S_IFDIR | (root.mode ?? 0o755),
        uid: root.uid,
        gid: root.gid,
        nlink: 2,
        size: 0,
        rdev: 0,
        flags: 0,
        atimeNs: t,
        mtimeNs: t,
        ctimeNs: t,
        btimeNs: t,
        generation: store.generation,
      });
    });
  }

  /** At mount: returns crashed reservations, releases pending frees, destroys orphans. */
  mountRecovery(): { orphans: number } {
    this.allocator.recover();
    this.store.transaction(() => {
      this.store.clearOpen();
      this.store.clearLastReply();
    });
    return { orphans: this.cleanOrphans() };
  }

  // ---- lookups ---------------------------------------------------------------------------------

  getattr(ino: number): Inode {
    const inode = this.store.getInode(ino);
    if (!inode) throw new ImapError('IMAP_E_NOT_FOUND', `ino ${ino}`);
    return inode;
  }

  lookup(parent: number, name: Buffer, caller: Caller = ROOT_CALLER): Inode {
    const dir = this.dir(parent);
    this.access(dir, caller, X_OK, 'search permission on the directory');
    if (name.equals(DOT)) return dir;
    if (name.equals(DOTDOT)) return this.getattr(this.parentOf(parent));
    checkName(name);
    const d = this.store.lookup(parent, name);
    if (!d) throw new ImapError('IMAP_E_NOT_FOUND', printable(name));
    return this.getattr(d.ino);
  }

  /** Resolves an absolute path of byte components, following no symlink ("/" = root). */
  resolve(path: string, caller: Caller = ROOT_CALLER): Inode {
    let inode = this.getattr(ROOT_INO);
    for (const part of path.split('/')) {
      if (part === '') continue;
      inode = this.lookup(inode.ino, Buffer.from(part), caller);
    }
    return inode;
  }

  readlink(ino: number): Buffer {
    const inode = this.getattr(ino);
    if (!isLnk(inode.mode)) throw new ImapError('IMAP_E_INVALID', `ino ${ino} is not a symlink`);
    const target = this.store.getSymlink(ino);
    if (!target) throw new ImapError('IMAP_E_CORRUPT_METADATA', `symlink ${ino} has no target`);
    return target;
  }

  /**
   * Entries after `cookie` (0 = from the start): "." (cookie 1), ".." (cookie 2), then entries in
   * creation order. Cookies are stable, so a listing interrupted by creates and unlinks resumes
   * without skipping surviving entries or repeating them.
   */
  readdir(ino: number, cookie = 0, limit = 1024): DirEntry[] {
    this.dir(ino);
    const out: DirEntry[] = [];
    if (cookie < 1 && out.length < limit) out.push({ name: DOT, ino, type: S_IFDIR, cookie: 1 });
    if (cookie < 2 && out.length < limit) {
      out.push({ name: DOTDOT, ino: this.parentOf(ino), type: S_IFDIR, cookie: 2 });
    }
    if (out.length < limit) {
      for (const d of this.store.listDirents(ino, Math.max(cookie, 2), limit - out.length)) {
        out.push({ name: d.name, ino: d.ino, type: d.type, cookie: d.cookie });
      }
    }
    return out;
  }

  // ---- creation --------------------------------------------------------------------------------

  mknod(parent: number, name: Buffer, mode: number, rdev: number, caller: Caller): Inode {
    if ((mode & S_IFMT) === 0) mode |= S_IFREG;
    if (!isValidType(mode) || isDir(mode)) throw new ImapError('IMAP_E_INVALID', `mode ${mode.toString(8)}`);
    return this.createInode(parent, name, mode, rdev, caller, null);
  }

  create(parent: number, name: Buffer, mode: number, caller: Caller): Inode {
    return this.mknod(parent, name, S_IFREG | (mode & PERM_MASK), 0, caller);
  }

  mkdir(parent: number, name: Buffer, mode: number, caller: Caller): Inode {
    return this.createInode(parent, name, S_IFDIR | (mode & PERM_MASK), 0, caller, null);
  }

  symlink(parent: number, name: Buffer, target: Buffer, caller: Caller): Inode {
    if (target.length === 0) throw new ImapError('IMAP_E_NOT_FOUND', 'empty symlink target');
    if (target.length > SYMLINK_MAX) throw new ImapError('IMAP_E_NAME_TOO_LONG', 'symlink target');
    return this.createInode(parent, name, S_IFLNK | 0o777, 0, { ...caller, umask: 0 }, target);
  }

  link(ino: number, newParent: number, newName: Buffer, caller: Caller): Inode {
    return this.store.transaction(() => {
      const inode = this.getattr(ino);
      if (isDir(inode.mode)) throw new ImapError('IMAP_E_NOT_PERMITTED', 'hard link to a directory');
      if (inode.nlink === 0) throw new ImapError('IMAP_E_NOT_FOUND', `ino ${ino} was unlinked`);
      const dir = this.dir(newParent);
      this.checkNewName(dir, newName, caller);
      const t = nowNs();
      this.store.insertDirent(newParent, newName, ino, inode.mode & S_IFMT);
      this.store.updateInode(ino, { nlink: inode.nlink + 1, ctimeNs: t });
      this.touchDir(newParent, t);
      return this.getattr(ino);
    });
  }

  // ---- removal ---------------------------------------------------------------------------------

  unlink(parent: number, name: Buffer, caller: Caller): void {
    this.store.transaction(() => {
      const dir = this.dir(parent);
      const victim = this.entryForRemoval(dir, name, caller);
      if (isDir(victim.mode)) throw new ImapError('IMAP_E_IS_DIR', printable(name));
      const t = nowNs();
      this.store.deleteDirent(parent, name);
      this.dropLink(victim, t);
      this.touchDir(parent, t);
    });
  }

  rmdir(parent: number, name: Buffer, caller: Caller): void {
    this.store.transaction(() => {
      const dir = this.dir(parent);
      if (name.equals(DOT)) throw new ImapError('IMAP_E_INVALID', 'rmdir "."');
      if (name.equals(DOTDOT)) throw new ImapError('IMAP_E_NOT_EMPTY', 'rmdir ".."');
      const victim = this.entryForRemoval(dir, name, caller);
      if (!isDir(victim.mode)) throw new ImapError('IMAP_E_NOT_DIR', printable(name));
      if (this.store.hasDirents(victim.ino)) throw new ImapError('IMAP_E_NOT_EMPTY', printable(name));
      const t = nowNs();
      this.store.deleteDirent(parent, name);
      this.dropLink(victim, t);
      this.store.updateInode(parent, { nlink: dir.nlink - 1 });
      this.touchDir(parent, t);
    });
  }

  // ---- rename ----------------------------------------------------------------------------------

  rename(
    parent: number,
    name: Buffer,
    newParent: number,
    newName: Buffer,
    flags: number,
    caller: Caller,
  ): void {
    if (
      (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) !== 0 ||
      flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)
    ) {
      throw new ImapError('IMAP_E_INVALID', `rename flags ${flags}`);
    }
    this.store.transaction(() => {
      const fromDir = this.dir(parent);
      const toDir = this.dir(newParent);
      for (const n of [name, newName]) {
        if (n.equals(DOT) || n.equals(DOTDOT)) throw new ImapError('IMAP_E_INVALID', 'rename of "." or ".."');
      }
      const src = this.entryForRemoval(fromDir, name, caller);
      checkName(newName);
      this.access(toDir, caller, W_OK | X_OK, 'write permission on the target directory');
      const dstEntry = this.store.lookup(newParent, newName);
      const dst = dstEntry ? this.getattr(dstEntry.ino) : undefined;

      if (flags & RENAME_EXCHANGE) {
        if (!dst) throw new ImapError('IMAP_E_NOT_FOUND', printable(newName));
        this.exchange(fromDir, name, src, toDir, newName, dst, caller);
        return;
      }
      if (dst && flags & RENAME_NOREPLACE) throw new ImapError('IMAP_E_EXISTS', printable(newName));
      if (dst && dst.ino === src.ino) return; // two names of one inode: POSIX says do nothing
      if (isDir(src.mode)) {
        this.checkNotInto(src.ino, newParent);
        if (parent !== newParent && caller.uid !== 0) {
          this.access(src, caller, W_OK, 'moving a directory needs write permission on it (its "..")');
        }
      }
      const t = nowNs();
      if (dst) {
        checkSticky(toDir, dst, caller, printable(newName));
        if (isDir(src.mode) && !isDir(dst.mode)) throw new ImapError('IMAP_E_NOT_DIR', printable(newName));
        if (!isDir(src.mode) && isDir(dst.mode)) throw new ImapError('IMAP_E_IS_DIR', printable(newName));
        if (isDir(dst.mode) && this.store.hasDirents(dst.ino)) {
          throw new ImapError('IMAP_E_NOT_EMPTY', printable(newName));
        }
        this.store.retargetDirent(newParent, newName, src.ino, src.mode & S_IFMT);
        this.dropLink(dst, t);
        if (isDir(dst.mode)) this.adjustNlink(newParent, -1);
      } else {
        this.store.insertDirent(newParent, newName, src.ino, src.mode & S_IFMT);
      }
      this.store.deleteDirent(parent, name);
      if (isDir(src.mode) && parent !== newParent) {
        this.adjustNlink(parent, -1);
        this.adjustNlink(newParent, +1);
      }
      this.store.updateInode(src.ino, { ctimeNs: t });
      this.touchDir(parent, t);
      if (newParent !== parent) this.touchDir(newParent, t);
    });
  }

  // ---- attributes ------------------------------------------------------------------------------

  /**
   * chmod/chown/utimens/truncate. A size change that must rewrite the partial last cluster needs the
   * data path: use FileSystemIO.setattr, or prepareTruncate/commitTruncate; here it throws
   * IMAP_E_INVALID. ctime always moves.
   */
  setattr(ino: number, attr: SetAttr, caller: Caller): Inode {
    return this.store.transaction(() => {
      const inode = this.getattr(ino);
      const t = nowNs();
      let mode = inode.mode;
      let killSuid = false;
      if (attr.uid !== undefined || attr.gid !== undefined) {
        this.checkChown(inode, attr, caller);
        // Linux (since 2.2.13, root included): chown of a non-directory drops setuid and setgid.
        killSuid = !isDir(inode.mode);
      }
      if (attr.mode !== undefined) {
        if (!isOwnerOrRoot(inode, caller))
          throw new ImapError('IMAP_E_NOT_PERMITTED', 'chmod: not the owner');
        let perm = attr.mode & PERM_MASK;
        // A non-root owner outside the file's group cannot keep setgid (it would grant that group).
        if (caller.uid !== 0 && !inGroup(caller, attr.gid ?? inode.gid)) perm &= ~S_ISGID;
        mode = (inode.mode & S_IFMT) | perm;
      } else if (killSuid) {
        mode &= ~S_ISUID;
        if ((mode & 0o010) !== 0) mode &= ~S_ISGID;
      }
      for (const which of ['atimeNs', 'mtimeNs'] as const) {
        const v = attr[which];
        if (v === undefined) continue;
        if (!isOwnerOrRoot(inode, caller)) {
          // Anyone with write access may set both times to "now", only the owner to explicit times.
          if (v !== 'now') throw new ImapError('IMAP_E_NOT_PERMITTED', 'utimens: not the owner');
          this.access(inode, caller, W_OK, 'utimens needs write permission');
        }
      }
      if (attr.size !== undefined && attr.size !== inode.size) {
        this.checkTruncate(ino, caller);
        const plan = this.prepareTruncate(ino, attr.size);
        if (plan.tail) {
          this.abortWrite(plan.tail);
          throw new ImapError('IMAP_E_INVALID', 'this truncate rewrites data: use the data path');
        }
        this.commitTruncate(plan, null, t);
      }
      const when = (v: bigint | 'now' | undefined): bigint | undefined => (v === 'now' ? t : v);
      this.store.updateInode(ino, {
        mode,
        uid: attr.uid,
        gid: attr.gid,
        atimeNs: when(attr.atimeNs),
        mtimeNs: when(attr.mtimeNs),
        ctimeNs: attr.ctimeNs ?? t,
      });
      return this.getattr(ino);
    });
  }

  /** Throws unless `caller` may change the size of `ino` (a regular file it can write). */
  checkTruncate(ino: number, caller: Caller): void {
    const inode = this.getattr(ino);
    if (isDir(inode.mode)) throw new ImapError('IMAP_E_IS_DIR', `truncate ino ${ino}`);
    this.access(inode, caller, W_OK, 'truncate needs write permission');
  }

  // ---- xattrs ----------------------------------------------------------------------------------

  setxattr(ino: number, name: Buffer, value: Buffer, flags: number, caller: Caller): void {
    checkXattrName(name);
    if (value.length > XATTR_VALUE_MAX) throw new ImapError('IMAP_E_TOO_BIG', `${value.length} bytes`);
    this.store.transaction(() => {
      const inode = this.getattr(ino);
      this.checkXattrWrite(inode, name, caller);
      const exists = this.store.getXattr(ino, name) !== undefined;
      if (flags & XATTR_CREATE && exists) throw new ImapError('IMAP_E_EXISTS', `xattr ${printable(name)}`);
      if (flags & XATTR_REPLACE && !exists) throw new ImapError('IMAP_E_NO_ATTR', printable(name));
      this.store.putXattr(ino, name, Buffer.from(value));
      this.store.updateInode(ino, { ctimeNs: nowNs() });
    });
  }

  /** The value; with `size` > 0 smaller than the value, IMAP_E_RANGE (size 0 = ask for the size). */
  getxattr(ino: number, name: Buffer, size = 0): Buffer {
    checkXattrName(name);
    this.getattr(ino);
    const value = this.store.getXattr(ino, name);
    if (value === undefined) throw new ImapError('IMAP_E_NO_ATTR', printable(name));
    if (size > 0 && size < value.length) throw new ImapError('IMAP_E_RANGE', `${value.length} > ${size}`);
    return value;
  }

  /** Names, each followed by a NUL, as listxattr(2) returns them; size semantics as getxattr. */
  listxattr(ino: number, size = 0): Buffer {
    this.getattr(ino);
    const names = this.store.listXattrs(ino);
    const out = Buffer.concat(names.flatMap((n) => [n, Buffer.alloc(1)]));
    if (size > 0 && size < out.length) throw new ImapError('IMAP_E_RANGE', `${out.length} > ${size}`);
    return out;
  }

  removexattr(ino: number, name: Buffer, caller: Caller): void {
    checkXattrName(name);
    this.store.transaction(() => {
      const inode = this.getattr(ino);
      this.checkXattrWrite(inode, name, caller);
      if (!this.store.deleteXattr(ino, name)) throw new ImapError('IMAP_E_NO_ATTR', printable(name));
      this.store.updateInode(ino, { ctimeNs: nowNs() });
    });
  }

  // ---- open files and orphans ------------------------------------------------------------------

  open(ino: number): Inode {
    const inode = this.getattr(ino);
    this.store.transaction(() => this.store.addOpen(ino, 1));
    return inode;
  }

  /** Last release of an unlinked inode destroys it. */
  release(ino: number): void {
    this.store.transaction(() => {
      if (this.store.addOpen(ino, -1) > 0) return;
      const inode = this.store.getInode(ino);
      if (inode && inode.nlink === 0) this.destroy(ino);
    });
  }

  isOpen(ino: number): boolean {
    return this.store.openCount(ino) > 0;
  }

  /** Destroys inodes with no name that nobody has open (after a crash). Returns how many. */
  cleanOrphans(): number {
    let n = 0;
    this.store.transaction(() => {
      for (const ino of this.store.orphans()) {
        if (ino === ROOT_INO || this.isOpen(ino)) continue;
        this.destroy(ino);
        n += 1;
      }
    });
    return n;
  }

  statfs(): StatFs {
    const info = this.store.info;
    const free = this.store.freeTotal();
    return {
      bsize: CLUSTER_SIZE,
      frsize: CLUSTER_SIZE,
      blocks: info.clusterCount,
      bfree: free,
      bavail: free,
      files: Number.MAX_SAFE_INTEGER,
      ffree: Number.MAX_SAFE_INTEGER - this.store.countInodes(),
      namemax: NAME_MAX,
    };
  }

  // ---- data path (see data-path.ts) ------------------------------------------------------------

  planRead(ino: number, offset: number, length: number): ReadPlan {
    return this.data.planRead(ino, offset, length);
  }

  prepareWrite(ino: number, offset: number, length: number, near?: number): WritePlan {
    return this.data.prepareWrite(ino, offset, length, near);
  }

  commitWrite(plan: WritePlan, crcs: Buffer, mtimeNs?: bigint): void {
    this.data.commitWrite(plan, crcs, mtimeNs);
  }

  abortWrite(plan: WritePlan): void {
    this.data.abortWrite(plan);
  }

  prepareTruncate(ino: number, size: number): TruncatePlan {
    return this.data.prepareTruncate(ino, size);
  }

  commitTruncate(plan: TruncatePlan, tailCrcs: Buffer | null, timeNs?: bigint): void {
    this.data.commitTruncate(plan, tailCrcs, timeNs);
  }

  fallocate(ino: number, offset: number, length: number, keepSize = false): void {
    this.data.fallocate(ino, offset, length, keepSize);
  }

  /** Releases clusters freed before a durable point (call after store.sync / a checkpoint). */
  releasePending(): number {
    return this.allocator.releasePending();
  }

  // ---- internals -------------------------------------------------------------------------------

  private createInode(
    parent: number,
    name: Buffer,
    mode: number,
    rdev: number,
    caller: Caller,
    target: Buffer | null,
  ): Inode {
    return this.store.transaction(() => {
      const dir = this.dir(parent);
      this.checkNewName(dir, name, caller);
      const t = nowNs();
      let perm = mode & PERM_MASK & ~(caller.umask ?? 0);
      let gid = caller.gid;
      // BSD group semantics in a setgid directory: inherit its group; subdirectories stay setgid.
      if (dir.mode & S_ISGID) {
        gid = dir.gid;
        if (isDir(mode)) perm |= S_ISGID;
      }
      if (!isDir(mode) && perm & S_ISGID && caller.uid !== 0 && !inGroup(caller, gid)) perm &= ~S_ISGID;
      const ino = this.store.insertInode({
        mode: (mode & S_IFMT) | perm,
        uid: caller.uid,
        gid,
        nlink: isDir(mode) ? 2 : 1,
        size: target ? target.length : 0,
        rdev,
        flags: 0,
        atimeNs: t,
        mtimeNs: t,
        ctimeNs: t,
        btimeNs: t,
        generation: this.store.generation,
      });
      if (target) this.store.setSymlink(ino, Buffer.from(target));
      this.store.insertDirent(parent, name, ino, mode & S_IFMT);
      if (isDir(mode)) this.store.updateInode(parent, { nlink: dir.nlink + 1 });
      this.touchDir(parent, t);
      return this.getattr(ino);
    });
  }

  private exchange(
    fromDir: Inode,
    name: Buffer,
    src: Inode,
    toDir: Inode,
    newName: Buffer,
    dst: Inode,
    caller: Caller,
  ): void {
    checkSticky(toDir, dst, caller, printable(newName));
    if (src.ino === dst.ino) return;
    if (isDir(src.mode)) this.checkNotInto(src.ino, toDir.ino);
    if (isDir(dst.mode)) this.checkNotInto(dst.ino, fromDir.ino);
    const t = nowNs();
    this.store.retargetDirent(fromDir.ino, name, dst.ino, dst.mode & S_IFMT);
    this.store.retargetDirent(toDir.ino, newName, src.ino, src.mode & S_IFMT);
    if (fromDir.ino !== toDir.ino && isDir(src.mode) !== isDir(dst.mode)) {
      const delta = isDir(src.mode) ? 1 : -1;
      this.adjustNlink(toDir.ino, delta);
      this.adjustNlink(fromDir.ino, -delta);
    }
    this.store.updateInode(src.ino, { ctimeNs: t });
    this.store.updateInode(dst.ino, { ctimeNs: t });
    this.touchDir(fromDir.ino, t);
    if (toDir.ino !== fromDir.ino) this.touchDir(toDir.ino, t);
  }

  /** EINVAL if `target` is `dirIno` or inside it (a directory cannot move into its own subtree). */
  private checkNotInto(dirIno: number, target: number): void {
    let at = target;
    for (let depth = 0; depth < 1_000_000; depth += 1) {
      if (at === dirIno) throw new ImapError('IMAP_E_INVALID', 'cannot move a directory into itself');
      if (at === ROOT_INO) return;
      at = this.parentOf(at);
    }
    throw new ImapError('IMAP_E_CORRUPT_METADATA', 'directory parent chain loops');
  }

  private parentOf(dirIno: number): number {
    if (dirIno === ROOT_INO) return ROOT_INO;
    const names = this.store.direntsOf(dirIno);
    const first = names[0];
    if (!first) throw new ImapError('IMAP_E_NOT_FOUND', `directory ${dirIno} has no parent`);
    return first.parent;
  }

  private entryForRemoval(dir: Inode, name: Buffer, caller: Caller): Inode {
    checkName(name);
    this.access(dir, caller, W_OK | X_OK, 'write permission on the directory');
    const d = this.store.lookup(dir.ino, name);
    if (!d) throw new ImapError('IMAP_E_NOT_FOUND', printable(name));
    const victim = this.getattr(d.ino);
    checkSticky(dir, victim, caller, printable(name));
    return victim;
  }

  private checkNewName(dir: Inode, name: Buffer, caller: Caller): void {
    if (name.equals(DOT) || name.equals(DOTDOT)) throw new ImapError('IMAP_E_EXISTS', printable(name));
    checkName(name);
    if (dir.nlink === 0) throw new ImapError('IMAP_E_NOT_FOUND', 'directory was removed');
    this.access(dir, caller, W_OK | X_OK, 'write permission on the directory');
    if (this.store.lookup(dir.ino, name)) throw new ImapError('IMAP_E_EXISTS', printable(name));
  }

  private checkChown(inode: Inode, attr: SetAttr, caller: Caller): void {
    if (caller.uid === 0) return;
    if (attr.uid !== undefined && attr.uid !== inode.uid) {
      throw new ImapError('IMAP_E_NOT_PERMITTED', 'chown: only root may change the owner');
    }
    if (attr.gid !== undefined && attr.gid !== inode.gid) {
      if (caller.uid !== inode.uid || !inGroup(caller, attr.gid)) {
        throw new ImapError('IMAP_E_NOT_PERMITTED', 'chgrp: not the owner or not a member of the group');
      }
    }
    if ((attr.uid !== undefined || attr.gid !== undefined) && caller.uid !== inode.uid) {
      throw new ImapError('IMAP_E_NOT_PERMITTED', 'chown: not the owner');
    }
  }

  private checkXattrWrite(inode: Inode, name: Buffer, caller: Caller): void {
    if (caller.uid === 0) return;
    if (
      name.subarray(0, 8).toString('latin1') === 'trusted.' ||
      name.subarray(0, 9).toString() === 'security.'
    ) {
      throw new ImapError('IMAP_E_NOT_PERMITTED', 'xattr namespace needs root');
    }
    this.access(inode, caller, W_OK, 'xattr needs write permission');
  }

  private dropLink(inode: Inode, t: bigint): void {
    const nlink = isDir(inode.mode) ? 0 : inode.nlink - 1;
    this.store.updateInode(inode.ino, { nlink, ctimeNs: t });
    if (nlink === 0 && !this.isOpen(inode.ino)) this.destroy(inode.ino);
  }

  private destroy(ino: number): void {
    this.extents.punch(ino, 0);
    this.store.deleteInode(ino);
  }

  private adjustNlink(ino: number, delta: number): void {
    const inode = this.getattr(ino);
    this.store.updateInode(ino, { nlink: inode.nlink + delta });
  }

  private touchDir(ino: number, t: bigint): void {
    this.store.updateInode(ino, { mtimeNs: t, ctimeNs: t });
  }

  private dir(ino: number): Inode {
    const inode = this.getattr(ino);
    if (!isDir(inode.mode)) throw new ImapError('IMAP_E_NOT_DIR', `ino ${ino}`);
    return inode;
  }

  private access(inode: Inode, caller: Caller, want: number, what: string): void {
    if (this.enforce) checkAccess(inode, caller, want, what);
  }
}

function checkName(name: Buffer): void {
  if (name.length === 0) throw new ImapError('IMAP_E_NOT_FOUND', 'empty name');
  if (name.length > NAME_MAX) throw new ImapError('IMAP_E_NAME_TOO_LONG', `${name.length} bytes`);
  if (name.includes(0x2f) || name.includes(0))
    throw new ImapError('IMAP_E_INVALID', 'name contains "/" or NUL');
}

function checkXattrName(name: Buffer): void {
  if (name.length === 0) throw new ImapError('IMAP_E_INVALID', 'empty xattr name');
  if (name.length > XATTR_NAME_MAX) throw new ImapError('IMAP_E_RANGE', 'xattr name longer than 255 bytes');
}

/** A name for messages: bytes that are not valid UTF-8 are shown escaped. */
export function printable(name: Buffer): string {
  return JSON.stringify(name.toString('utf8'));
}
