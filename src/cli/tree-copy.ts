/**
 * Offline copy of files and trees into and out of a map (`put`, `get`): modes, owners (when root),
 * atime/mtime in nanoseconds, symlinks, hard links within the tree, special files (into the map).
 * Data moves in 1 MiB chunks through one reused buffer, so memory stays flat for any file size.
 * Host paths are Buffers end to end: file names need not be UTF-8.
 */
import {
  type BigIntStats,
  closeSync,
  linkSync,
  lstatSync,
  lutimesSync,
  lchownSync,
  chmodSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { ROOT_CALLER } from '../fs/access';
import type { FileSystem } from '../fs/filesystem';
import type { FileSystemIO } from '../fs/filesystem-io';
import { isDir, isLnk, isReg, S_IFMT } from '../fs/modes';
import type { Inode } from '../fs/types';
import { ImapError, fromSystemError } from '../protocol/errors';

export const CHUNK = 1 << 20;
const ROOT = { ...ROOT_CALLER, umask: 0 };
const SLASH = Buffer.from('/');

export interface CopyStats {
  files: number;
  directories: number;
  symlinks: number;
  special: number;
  hardlinks: number;
  bytes: number;
}

const emptyStats = (): CopyStats => ({
  files: 0,
  directories: 0,
  symlinks: 0,
  special: 0,
  hardlinks: 0,
  bytes: 0,
});

export function joinPath(dir: Buffer, name: Buffer): Buffer {
  return dir.length > 0 && dir[dir.length - 1] === 0x2f
    ? Buffer.concat([dir, name])
    : Buffer.concat([dir, SLASH, name]);
}

export function baseName(path: Buffer): Buffer {
  let end = path.length;
  while (end > 1 && path[end - 1] === 0x2f) end -= 1;
  const start = path.lastIndexOf(0x2f, end - 1) + 1;
  return path.subarray(start, end);
}

/** Bytes of regular files under a host path (for the progress bar). */
export function hostTreeBytes(path: Buffer): number {
  const st = host(() => lstatSync(path), path);
  if (st.isFile()) return st.size;
  if (!st.isDirectory()) return 0;
  let total = 0;
  for (const name of host(() => readdirSync(path, { encoding: 'buffer' }), path))
    total += hostTreeBytes(joinPath(path, name));
  return total;
}

// ---- into the map ----------------------------------------------------------------------------

export class CopyIn {
  readonly stats = emptyStats();
  private readonly buf: Buffer;
  private readonly links = new Map<string, number>();

  constructor(
    private readonly fs: FileSystem,
    private readonly io: FileSystemIO,
    private readonly onBytes: (bytes: number) => void = () => undefined,
    /** Bytes per read from the host and write to the map (--chunk-size). */
    chunkBytes = CHUNK,
  ) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** cp -a semantics: into DEST if it is a directory, else as DEST. */
  run(src: Buffer, dest: string): CopyStats {
    const existing = this.tryResolve(dest);
    if (existing && isDir(existing.mode)) {
      this.copy(src, existing.ino, baseName(src));
    } else {
      const slash = dest.replace(/\/+$/, '').lastIndexOf('/');
      const parentPath = slash <= 0 ? '/' : dest.slice(0, slash);
      const name = Buffer.from(dest.replace(/\/+$/, '').slice(slash + 1));
      if (name.length === 0) throw new ImapError('IMAP_E_INVALID', `destination ${dest}`);
      const parent = this.fs.resolve(parentPath);
      if (!isDir(parent.mode)) throw new ImapError('IMAP_E_NOT_DIR', parentPath);
      this.copy(src, parent.ino, name);
    }
    return this.stats;
  }

  private copy(src: Buffer, parent: number, name: Buffer): void {
    const st = host(() => lstatSync(src, { bigint: true }), src);
    const existing = this.tryLookup(parent, name);
    if (st.nlink > 1n && !st.isDirectory()) {
      const seen = this.links.get(`${st.dev}:${st.ino}`);
      if (seen !== undefined) {
        if (existing) this.removeExisting(parent, name, existing);
        this.fs.link(seen, parent, name, ROOT);
        this.stats.hardlinks += 1;
        return;
      }
    }
    let ino: number;
    if (st.isDirectory()) {
      if (existing && !isDir(existing.mode)) {
        throw new ImapError(
          'IMAP_E_NOT_DIR',
          `cannot replace non-directory ${name.toString()} with a directory`,
        );
      }
      ino = existing ? existing.ino : this.fs.mkdir(parent, name, 0o700, ROOT).ino;
      this.stats.directories += 1;
      const names = host(() => readdirSync(src, { encoding: 'buffer' }), src).sort(Buffer.compare);
      for (const child of names) this.copy(joinPath(src, child), ino, child);
    } else if (st.isFile()) {
      if (existing && isDir(existing.mode)) throw new ImapError('IMAP_E_IS_DIR', name.toString());
      if (existing && !isReg(existing.mode)) this.removeExisting(parent, name, existing);
      ino = existing && isReg(existing.mode) ? existing.ino : this.fs.create(parent, name, 0o600, ROOT).ino;
      if (existing && isReg(existing.mode)) this.io.truncate(ino, 0);
      this.copyData(src, ino);
      this.stats.files += 1;
    } else if (st.isSymbolicLink()) {
      if (existing) this.removeExisting(parent, name, existing);
      const target = host(() => readlinkSync(src, { encoding: 'buffer' }), src);
      ino = this.fs.symlink(parent, name, target, ROOT).ino;
      this.stats.symlinks += 1;
    } else {
      if (existing) this.removeExisting(parent, name, existing);
      ino = this.fs.mknod(parent, name, Number(st.mode), Number(st.rdev), ROOT).ino;
      this.stats.special += 1;
    }
    if (st.nlink > 1n && !st.isDirectory()) this.links.set(`${st.dev}:${st.ino}`, ino);
    this.fs.setattr(
      ino,
      {
        ...(isLnk(Number(st.mode)) ? {} : { mode: Number(st.mode) & 0o7777 }),
        uid: Number(st.uid),
        gid: Number(st.gid),
        atimeNs: st.atimeNs,
        mtimeNs: st.mtimeNs,
      },
      ROOT,
    );
  }

  private copyData(src: Buffer, ino: number): void {
    const fd = host(() => openSync(src, 'r'), src);
    try {
      let offset = 0;
      for (;;) {
        const n = host(() => readSync(fd, this.buf, 0, this.buf.length, offset), src);
        if (n === 0) break;
        this.io.write(ino, offset, this.buf.subarray(0, n));
        offset += n;
        this.stats.bytes += n;
        this.onBytes(this.stats.bytes);
      }
    } finally {
      closeSync(fd);
    }
  }

  private removeExisting(parent: number, name: Buffer, existing: Inode): void {
    if (isDir(existing.mode)) throw new ImapError('IMAP_E_IS_DIR', name.toString());
    this.fs.unlink(parent, name, ROOT);
  }

  private tryLookup(parent: number, name: Buffer): Inode | undefined {
    try {
      return this.fs.lookup(parent, name);
    } catch (err) {
      if (err instanceof ImapError && err.code === 'IMAP_E_NOT_FOUND') return undefined;
      throw err;
    }
  }

  private tryResolve(path: string): Inode | undefined {
    try {
      return this.fs.resolve(path);
    } catch (err) {
      if (err instanceof ImapError && err.code === 'IMAP_E_NOT_FOUND') return undefined;
      throw err;
    }
  }
}

// ---- out of the map --------------------------------------------------------------------------

export class CopyOut {
  readonly stats = emptyStats();
  private readonly buf: Buffer;
  private readonly links = new Map<number, Buffer>();
  private readonly asRoot = process.getuid?.() === 0;

  constructor(
    private readonly fs: FileSystem,
    private readonly io: FileSystemIO,
    private readonly onBytes: (bytes: number) => void = () => undefined,
    /** Bytes per read from the map and write to the host (--chunk-size). */
    chunkBytes = CHUNK,
  ) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  run(src: string, dest: Buffer): CopyStats {
    const inode = this.fs.resolve(src);
    let target = dest;
    const st = tryHostStat(dest);
    if (st?.isDirectory()) {
      const name = src.replace(/\/+$/, '').split('/').pop() ?? '';
      if (name !== '') target = joinPath(dest, Buffer.from(name));
    }
    this.copy(inode, target);
    return this.stats;
  }

  private copy(inode: Inode, dest: Buffer): void {
    if (inode.nlink > 1 && !isDir(inode.mode)) {
      const seen = this.links.get(inode.ino);
      if (seen) {
        host(() => linkSync(seen, dest), dest);
        this.stats.hardlinks += 1;
        return;
      }
      this.links.set(inode.ino, dest);
    }
    const type = inode.mode & S_IFMT;
    if (isDir(type)) {
      const st = tryHostStat(dest);
      if (!st) host(() => mkdirSync(dest, { mode: 0o700 }), dest);
      else if (!st.isDirectory()) throw new ImapError('IMAP_E_NOT_DIR', dest.toString());
      this.stats.directories += 1;
      let cookie = 2; // skip "." and ".."
      for (;;) {
        const batch = this.fs.readdir(inode.ino, cookie, 512);
        if (batch.length === 0) break;
        for (const e of batch) this.copy(this.fs.getattr(e.ino), joinPath(dest, e.name));
        cookie = batch[batch.length - 1]?.cookie ?? cookie;
      }
    } else if (isReg(type)) {
      this.copyData(inode, dest);
      this.stats.files += 1;
      if (!tryHostStat(dest)?.isFile()) return; // a device such as /dev/null keeps its own attributes
    } else if (isLnk(type)) {
      host(() => symlinkSync(this.fs.readlink(inode.ino), dest), dest);
      this.stats.symlinks += 1;
    } else {
      // FIFOs, sockets and devices cannot be created portably from Node: reported, not copied.
      this.stats.special += 1;
      return;
    }
    this.applyAttributes(inode, dest);
  }

  private copyData(inode: Inode, dest: Buffer): void {
    const fd = host(() => openSync(dest, 'w', 0o600), dest);
    try {
      let offset = 0;
      while (offset < inode.size) {
        const got = this.io.read(inode.ino, offset, this.buf.length, this.buf);
        if (got.length === 0) break;
        let written = 0;
        while (written < got.length) {
          written += host(() => writeSync(fd, got, written, got.length - written, offset + written), dest);
        }
        offset += got.length;
        this.stats.bytes += got.length;
        this.onBytes(this.stats.bytes);
      }
      if (offset < inode.size) {
        throw new ImapError('IMAP_E_IO', `${dest.toString()}: read ${offset} of ${inode.size} bytes`);
      }
    } finally {
      closeSync(fd);
    }
  }

  private applyAttributes(inode: Inode, dest: Buffer): void {
    const secs = (ns: bigint): number => Number(ns) / 1e9;
    if (isLnk(inode.mode)) {
      if (this.asRoot) host(() => lchownSync(dest, inode.uid, inode.gid), dest);
      host(() => lutimesSync(dest, secs(inode.atimeNs), secs(inode.mtimeNs)), dest);
      return;
    }
    if (this.asRoot) host(() => lchownSync(dest, inode.uid, inode.gid), dest);
    host(() => chmodSync(dest, inode.mode & 0o7777), dest);
    host(() => utimesSync(dest, secs(inode.atimeNs), secs(inode.mtimeNs)), dest);
  }
}

function tryHostStat(path: Buffer): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromSystemError(err, path.toString());
  }
}

/** Runs a host fs call; its errors become table errors naming the host path. */
function host<T>(fn: () => T, path: Buffer): T {
  try {
    return fn();
  } catch (err) {
    throw fromSystemError(err, path.toString());
  }
}
