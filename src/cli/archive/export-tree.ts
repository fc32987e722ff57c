/**
 * Writes the tree at a map path as tar members (`imapfs export`), as `tar -C DIR -c .` would:
 * the directory itself as "./", its entries as "./name", depth first. A file or symlink SRC is one
 * member under its own name. Every inode with more than one link is written once with its data;
 * its other names within the tree become hard link members. Sockets cannot be archived: counted
 * as skipped. Data is read in --chunk-size pieces through one reused buffer.
 */
import type { FileSystem } from '../../fs/filesystem';
import type { FileSystemIO } from '../../fs/filesystem-io';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, isDir, isReg } from '../../fs/modes';
import type { Inode } from '../../fs/types';
import { ImapError } from '../../protocol/errors';
import { CHUNK, type CopyStats, baseName } from '../tree-copy';
import { devMajor, devMinor } from './entry';
import type { Member, TarWriter } from './tar-writer';

export interface ExportStats extends CopyStats {
  /** Sockets, which tar cannot hold. */
  skipped: number;
}

const EMPTY = Buffer.alloc(0);
const READDIR_BATCH = 512;

export class ArchiveExport {
  readonly stats: ExportStats = {
    files: 0,
    directories: 0,
    symlinks: 0,
    special: 0,
    hardlinks: 0,
    bytes: 0,
    skipped: 0,
  };
  private readonly buf: Buffer;
  /** Member name of each multiply-linked inode written so far. */
  private readonly links = new Map<number, Buffer>();

  constructor(
    private readonly fs: FileSystem,
    private readonly io: FileSystemIO,
    private readonly writer: TarWriter,
    /** Called with the file bytes written so far. */
    private readonly onBytes: (bytes: number) => void = () => undefined,
    /** Bytes per read from the map (--chunk-size). */
    chunkBytes = CHUNK,
  ) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  async run(src: string): Promise<ExportStats> {
    const inode = this.fs.resolve(src);
    const name = isDir(inode.mode) ? Buffer.from('./') : baseName(Buffer.from(src));
    await this.member(inode, name);
    await this.writer.finish();
    return this.stats;
  }

  private async member(inode: Inode, path: Buffer): Promise<void> {
    const base: Member = {
      path,
      kind: 'file',
      mode: inode.mode & 0o7777,
      uid: inode.uid,
      gid: inode.gid,
      size: 0,
      mtimeNs: inode.mtimeNs,
      atimeNs: inode.atimeNs,
      linkpath: EMPTY,
      devmajor: 0,
      devminor: 0,
    };
    const type = inode.mode & S_IFMT;
    if (type === S_IFSOCK) {
      this.stats.skipped += 1;
      return;
    }
    if (inode.nlink > 1 && !isDir(inode.mode)) {
      const first = this.links.get(inode.ino);
      if (first) {
        await this.writer.member({ ...base, kind: 'hardlink', linkpath: first });
        await this.writer.endMember();
        this.stats.hardlinks += 1;
        return;
      }
      this.links.set(inode.ino, path);
    }
    switch (type) {
      case S_IFDIR:
        await this.writer.member({ ...base, kind: 'directory' });
        await this.writer.endMember();
        this.stats.directories += 1;
        await this.children(inode.ino, path);
        return;
      case S_IFREG:
        await this.writer.member({ ...base, kind: 'file', size: inode.size });
        await this.copyData(inode, path);
        await this.writer.endMember();
        this.stats.files += 1;
        return;
      case S_IFLNK:
        await this.writer.member({ ...base, kind: 'symlink', linkpath: this.fs.readlink(inode.ino) });
        this.stats.symlinks += 1;
        break;
      case S_IFCHR:
      case S_IFBLK: {
        const kind = type === S_IFCHR ? 'chardev' : 'blockdev';
        await this.writer.member({
          ...base,
          kind,
          devmajor: devMajor(inode.rdev),
          devminor: devMinor(inode.rdev),
        });
        this.stats.special += 1;
        break;
      }
      default: // S_IFIFO, the only type left (the metadata layer admits no other)
        await this.writer.member({ ...base, kind: 'fifo' });
        this.stats.special += 1;
    }
    await this.writer.endMember();
  }

  /** `dir` ends in '/', so a child's member name is `dir` + its name. */
  private async children(ino: number, dir: Buffer): Promise<void> {
    let cookie = 2; // after "." and ".."
    for (;;) {
      const batch = this.fs.readdir(ino, cookie, READDIR_BATCH);
      if (batch.length === 0) return;
      for (const e of batch) {
        const child = this.fs.getattr(e.ino);
        const name = Buffer.concat([dir, e.name, isDir(child.mode) ? Buffer.from('/') : EMPTY]);
        await this.member(child, name);
      }
      cookie = batch[batch.length - 1]?.cookie ?? cookie;
    }
  }

  private async copyData(inode: Inode, path: Buffer): Promise<void> {
    let offset = 0;
    while (offset < inode.size) {
      const got = this.io.read(inode.ino, offset, Math.min(this.buf.length, inode.size - offset), this.buf);
      if (got.length === 0) break;
      await this.writer.data(got);
      offset += got.length;
      this.stats.bytes += got.length;
      this.onBytes(this.stats.bytes);
    }
    if (offset < inode.size) {
      throw new ImapError('IMAP_E_IO', `${path.toString()}: read ${offset} of ${inode.size} bytes`);
    }
  }
}

/** Bytes of regular files under `inode`, each multiply-linked inode once (the progress total). */
export function mapTreeBytes(fs: FileSystem, inode: Inode, seen = new Set<number>()): number {
  if (isReg(inode.mode)) {
    if (inode.nlink > 1) {
      if (seen.has(inode.ino)) return 0;
      seen.add(inode.ino);
    }
    return inode.size;
  }
  if (!isDir(inode.mode)) return 0;
  let total = 0;
  let cookie = 2;
  for (;;) {
    const batch = fs.readdir(inode.ino, cookie, READDIR_BATCH);
    if (batch.length === 0) return total;
    for (const e of batch) total += mapTreeBytes(fs, fs.getattr(e.ino), seen);
    cookie = batch[batch.length - 1]?.cookie ?? cookie;
  }
}
