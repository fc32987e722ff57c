/** One archive member as import and export see it, after ustar, GNU and pax headers are merged. */
import { ImapError } from '../../protocol/errors';
import { printable } from '../../fs/filesystem';

export type EntryKind = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'directory' | 'fifo';

export interface TarEntry {
  /** The member name as stored, raw bytes (a directory's may end in '/'). */
  path: Buffer;
  kind: EntryKind;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Data bytes that follow the header (regular files; 0 for the others as written here). */
  size: number;
  mtimeNs: bigint;
  /** From a pax `atime` record; ustar has no atime. */
  atimeNs: bigint | null;
  /** Symlink target, or the member a hard link points at. */
  linkpath: Buffer;
  devmajor: number;
  devminor: number;
  /** Byte offset of the member's first header block, for messages. */
  offset: number;
}

/** ustar type flags. */
export const TYPEFLAG: Record<EntryKind, number> = {
  file: 0x30, // '0'
  hardlink: 0x31, // '1'
  symlink: 0x32, // '2'
  chardev: 0x33, // '3'
  blockdev: 0x34, // '4'
  directory: 0x35, // '5'
  fifo: 0x36, // '6'
};

/**
 * A member name as components below the extraction root: leading '/' and '.' components dropped
 * (as GNU tar does), '..' refused so that no member lands outside DEST. [] is the root itself.
 */
export function nameComponents(path: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i += 1) {
    if (i < path.length && path[i] !== 0x2f) continue;
    const part = path.subarray(start, i);
    start = i + 1;
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) {
      throw new ImapError(
        'IMAP_E_INVALID',
        `${printable(path)} has a ".." component, which would land outside the destination`,
      );
    }
    parts.push(part);
  }
  return parts;
}

// Linux dev_t as glibc's makedev/major/minor encode it (12-bit major and 20-bit minor, split).
export function devMajor(rdev: number): number {
  const d = BigInt(rdev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}

export function devMinor(rdev: number): number {
  const d = BigInt(rdev);
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}

export function makeDev(major: number, minor: number): number {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return Number(((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n));
}
