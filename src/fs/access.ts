/**
 * Who is calling, and what they may do. The FUSE front end builds a Caller from the request context;
 * the offline CLI acts as root. Checks follow POSIX (owner/group/other bits, root bypass, sticky
 * directories) so pjdfstest passes with or without the kernel's default_permissions.
 */
import { ImapError } from '../protocol/errors';
import { S_ISVTX, X_OK, isDir } from './modes';
import type { Inode } from './types';

export interface Caller {
  uid: number;
  gid: number;
  /** Supplementary groups. */
  groups?: readonly number[];
  /** Applied to the mode of created inodes. */
  umask?: number;
}

export const ROOT_CALLER: Caller = { uid: 0, gid: 0, groups: [], umask: 0 };

export function inGroup(caller: Caller, gid: number): boolean {
  return caller.gid === gid || (caller.groups?.includes(gid) ?? false);
}

/** Throws IMAP_E_PERMISSION unless caller has every bit of `want` (R_OK|W_OK|X_OK) on inode. */
export function checkAccess(inode: Inode, caller: Caller, want: number, what: string): void {
  if (want === 0) return;
  if (caller.uid === 0) {
    // Root needs an x bit somewhere to execute a non-directory; everything else is allowed.
    if ((want & X_OK) !== 0 && !isDir(inode.mode) && (inode.mode & 0o111) === 0) {
      throw new ImapError('IMAP_E_PERMISSION', what);
    }
    return;
  }
  let bits: number;
  if (caller.uid === inode.uid) bits = (inode.mode >> 6) & 7;
  else if (inGroup(caller, inode.gid)) bits = (inode.mode >> 3) & 7;
  else bits = inode.mode & 7;
  if ((bits & want) !== want) throw new ImapError('IMAP_E_PERMISSION', what);
}

/** In a sticky directory only the owner of the entry, of the directory, or root may remove it. */
export function checkSticky(dir: Inode, victim: Inode, caller: Caller, what: string): void {
  if ((dir.mode & S_ISVTX) === 0 || caller.uid === 0) return;
  if (caller.uid === victim.uid || caller.uid === dir.uid) return;
  throw new ImapError('IMAP_E_NOT_PERMITTED', what);
}

export function isOwnerOrRoot(inode: Inode, caller: Caller): boolean {
  return caller.uid === 0 || caller.uid === inode.uid;
}
