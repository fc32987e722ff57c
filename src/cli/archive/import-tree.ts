/**
 * Extracts a tar archive into a map directory (`imapfs import`), as `tar -x -C DEST` would into a
 * host directory: modes, numeric owners, mtime and atime in nanoseconds, symlinks, hard links to
 * earlier members, devices and FIFOs. An existing non-directory is replaced; an existing directory
 * is kept and takes the member's attributes. Missing parent directories are created (0755).
 *
 * Directory attributes are applied at the end (as tar does), since adding entries moves a
 * directory's mtime. A member whose data does not arrive whole (the archive is cut or damaged, the
 * map is full) is removed before the error propagates: what stays in the map is complete.
 */
import { ROOT_CALLER } from '../../fs/access';
import { type FileSystem, printable } from '../../fs/filesystem';
import type { FileSystemIO } from '../../fs/filesystem-io';
import { S_IFBLK, S_IFCHR, S_IFIFO, isDir } from '../../fs/modes';
import type { Inode } from '../../fs/types';
import { ImapError } from '../../protocol/errors';
import { rethrowAfter, toImapError } from '../report';
import { CHUNK, type CopyStats } from '../tree-copy';
import { type TarEntry, makeDev, nameComponents } from './entry';
import type { TarReader } from './tar-reader';

const ROOT = { ...ROOT_CALLER, umask: 0 };
const DEVICE_TYPE = { chardev: S_IFCHR, blockdev: S_IFBLK, fifo: S_IFIFO } as const;

export class ArchiveImport {
  readonly stats: CopyStats = { files: 0, directories: 0, symlinks: 0, special: 0, hardlinks: 0, bytes: 0 };
  private readonly buf: Buffer;
  /** Directories met so far, by member path (latin1 keeps bytes one to one): parent lookups are cheap. */
  private readonly dirs = new Map<string, number>();
  private readonly pending: Array<{ ino: number; entry: TarEntry }> = [];

  constructor(
    private readonly fs: FileSystem,
    private readonly io: FileSystemIO,
    /** Called with the file bytes written so far, after each write. */
    private readonly onBytes: (bytes: number) => void = () => undefined,
    /** Bytes per write to the map (--chunk-size). */
    chunkBytes = CHUNK,
  ) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** Every member of `reader` below `dest` (created if missing). */
  async run(reader: TarReader, dest: string): Promise<CopyStats> {
    const root = this.destination(dest);
    try {
      for (let e = await reader.next(); e; e = await reader.next()) {
        try {
          await this.member(reader, root, e);
        } catch (err) {
          throw inMember(err, e);
        }
      }
    } catch (err) {
      // Members imported before the failure stay: give their directories their attributes too.
      rethrowAfter(err, () => this.settleDirectories(), 'restoring directory attributes');
    }
    this.settleDirectories();
    return this.stats;
  }

  private async member(reader: TarReader, root: number, e: TarEntry): Promise<void> {
    const parts = nameComponents(e.path);
    if (parts.length === 0) {
      // "./": the destination directory itself, as `tar -C DEST -x` treats it.
      if (e.kind !== 'directory')
        throw new ImapError('IMAP_E_INVALID', 'a non-directory member with an empty name');
      this.pending.push({ ino: root, entry: e });
      this.stats.directories += 1;
      return;
    }
    const parent = this.parentDir(root, parts);
    const name = parts[parts.length - 1] as Buffer;
    const existing = this.tryLookup(parent, name);
    let ino: number;
    switch (e.kind) {
      case 'directory':
        if (existing && !isDir(existing.mode)) {
          throw new ImapError('IMAP_E_NOT_DIR', 'cannot replace a non-directory with a directory');
        }
        ino = existing ? existing.ino : this.fs.mkdir(parent, name, 0o700, ROOT).ino;
        this.dirs.set(key(parts), ino);
        this.pending.push({ ino, entry: e });
        this.stats.directories += 1;
        return;
      case 'hardlink': {
        const target = this.resolveMember(root, e.linkpath);
        if (existing?.ino !== target.ino) {
          if (existing) this.remove(parent, name, existing);
          this.fs.link(target.ino, parent, name, ROOT);
        }
        // A hard link member's attributes are its target's, already set.
        this.stats.hardlinks += 1;
        return;
      }
      case 'file':
        if (existing) this.remove(parent, name, existing);
        ino = this.fs.create(parent, name, 0o600, ROOT).ino;
        try {
          await this.copyData(reader, ino);
        } catch (err) {
          rethrowAfter(err, () => this.fs.unlink(parent, name, ROOT), 'removing the partial file');
        }
        this.stats.files += 1;
        break;
      case 'symlink':
        if (existing) this.remove(parent, name, existing);
        ino = this.fs.symlink(parent, name, e.linkpath, ROOT).ino;
        this.stats.symlinks += 1;
        break;
      default:
        if (existing) this.remove(parent, name, existing);
        ino = this.fs.mknod(
          parent,
          name,
          DEVICE_TYPE[e.kind] | e.mode,
          makeDev(e.devmajor, e.devminor),
          ROOT,
        ).ino;
        this.stats.special += 1;
    }
    this.applyAttributes(ino, e);
  }

  /** Data in --chunk-size writes through one reused buffer, whatever sizes the input arrives in. */
  private async copyData(reader: TarReader, ino: number): Promise<void> {
    let offset = 0;
    let used = 0;
    const flush = (): void => {
      this.io.write(ino, offset, this.buf.subarray(0, used));
      offset += used;
      this.stats.bytes += used;
      used = 0;
      this.onBytes(this.stats.bytes);
    };
    await reader.data((bytes) => {
      let at = 0;
      while (at < bytes.length) {
        const take = Math.min(bytes.length - at, this.buf.length - used);
        bytes.copy(this.buf, used, at, at + take);
        used += take;
        at += take;
        if (used === this.buf.length) flush();
      }
    });
    if (used > 0) flush();
  }

  private applyAttributes(ino: number, e: TarEntry): void {
    this.fs.setattr(
      ino,
      {
        ...(e.kind === 'symlink' ? {} : { mode: e.mode }),
        uid: e.uid,
        gid: e.gid,
        mtimeNs: e.mtimeNs,
        ...(e.atimeNs === null ? {} : { atimeNs: e.atimeNs }),
      },
      ROOT,
    );
  }

  private settleDirectories(): void {
    for (const { ino, entry } of this.pending.splice(0)) this.applyAttributes(ino, entry);
  }

  /** DEST inside the map, created like `mkdir -p` when missing. */
  private destination(dest: string): number {
    let ino = this.fs.resolve('/').ino;
    for (const part of dest.split('/')) {
      if (part === '') continue;
      ino = this.childDir(ino, Buffer.from(part), dest);
    }
    return ino;
  }

  /** The directory that holds member `parts`, its missing ancestors created. */
  private parentDir(root: number, parts: Buffer[]): number {
    let ino = root;
    for (let i = 0; i < parts.length - 1; i += 1) {
      const k = key(parts.slice(0, i + 1));
      const known = this.dirs.get(k);
      if (known !== undefined) {
        ino = known;
        continue;
      }
      ino = this.childDir(
        ino,
        parts[i] as Buffer,
        printable(Buffer.concat(parts.slice(0, i + 1).flatMap(withSlash))),
      );
      this.dirs.set(k, ino);
    }
    return ino;
  }

  private childDir(parent: number, name: Buffer, shown: string): number {
    const existing = this.tryLookup(parent, name);
    if (!existing) return this.fs.mkdir(parent, name, 0o755, ROOT).ino;
    // A symlink is not followed: no member may land outside the destination through one.
    if (!isDir(existing.mode)) throw new ImapError('IMAP_E_NOT_DIR', `${shown} is not a directory`);
    return existing.ino;
  }

  /** The inode an earlier member named `path` became (the target of a hard link member). */
  private resolveMember(root: number, path: Buffer): Inode {
    const parts = nameComponents(path);
    if (parts.length === 0) throw new ImapError('IMAP_E_INVALID', 'hard link to the destination directory');
    let inode = this.fs.getattr(root);
    for (const part of parts) {
      const next = isDir(inode.mode) ? this.tryLookup(inode.ino, part) : undefined;
      if (!next) throw new ImapError('IMAP_E_NOT_FOUND', `hard link target ${printable(path)}`);
      inode = next;
    }
    if (isDir(inode.mode))
      throw new ImapError('IMAP_E_NOT_PERMITTED', `hard link to directory ${printable(path)}`);
    return inode;
  }

  private remove(parent: number, name: Buffer, existing: Inode): void {
    if (isDir(existing.mode))
      throw new ImapError('IMAP_E_IS_DIR', 'cannot replace a directory with a non-directory');
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
}

function key(parts: Buffer[]): string {
  return parts.map((p) => p.toString('latin1')).join('/');
}

function withSlash(part: Buffer, i: number): Buffer[] {
  return i === 0 ? [part] : [Buffer.from('/'), part];
}

/** Errors of the map side name the member they happened on; archive errors already do. */
function inMember(err: unknown, e: TarEntry): unknown {
  const x = toImapError(err);
  if (x.code === 'IMAP_E_ARCHIVE_TRUNCATED' || x.code === 'IMAP_E_ARCHIVE_CORRUPT') return err;
  const where = `member ${printable(e.path)} (header at byte ${e.offset})`;
  return new ImapError(x.code, x.detail ? `${where}: ${x.detail}` : where, { cause: err });
}
