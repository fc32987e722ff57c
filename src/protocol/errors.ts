/**
 * The one table of imapfs error codes. Every failure a user can see carries one of these codes:
 * the CLI prints `code: message (hint)` and exits non-zero, `--json` prints the same fields, the FUSE
 * front end answers with `errno`, and the metrics layer counts errors by code.
 *
 * Codes are stable strings: add new ones, never rename or reuse one.
 */
import { constants as osConstants } from 'node:os';

const E = osConstants.errno;

export interface ErrorSpec {
  /** Positive errno the FUSE front end answers with. */
  readonly errno: number;
  /** One line for a human; details are appended by the thrower. */
  readonly message: string;
  /** What the user can do about it. */
  readonly hint: string;
  /** CLI exit status. 1 = operational error, 2 = usage/config error, 3 = data integrity problem. */
  readonly exit: 1 | 2 | 3;
}

export const ERROR_TABLE = {
  IMAP_E_NOT_FOUND: {
    errno: E.ENOENT,
    message: 'no such file or directory',
    hint: 'check the path; paths inside a map are absolute, such as /dir/file',
    exit: 1,
  },
  IMAP_E_MAP_MISSING: {
    errno: E.ENOENT,
    message: 'map file does not exist',
    hint: 'create one with `imapfs mkfs MAP.png`',
    exit: 1,
  },
  IMAP_E_TRUNCATED: {
    errno: E.EIO,
    message: 'map file is truncated',
    hint: 'the file ends before its PNG structure does; restore it from a copy or run `imapfs fsck --repair` if the sidecar is intact',
    exit: 3,
  },
  IMAP_E_NOT_A_MAP: {
    errno: E.EINVAL,
    message: 'file is not an imapfs map',
    hint: 'the file is not a PNG, or is a PNG without an imapfs superblock; check the path',
    exit: 2,
  },
  IMAP_E_VERSION_TOO_NEW: {
    errno: E.EPROTONOSUPPORT,
    message: 'map was written by a newer imapfs format version',
    hint: 'upgrade imapfs to a version that supports this format',
    exit: 2,
  },
  IMAP_E_CORRUPT_CHUNK: {
    errno: E.EIO,
    message: 'PNG chunk CRC mismatch',
    hint: 'the map file is damaged; run `imapfs fsck MAP.png` for details and `--repair` to rebuild checksums from intact data',
    exit: 3,
  },
  IMAP_E_CORRUPT_HEADER: {
    errno: E.EIO,
    message: 'PNG structure is damaged',
    hint: 'a chunk header or the image header is invalid; restore the map from a copy or export a snapshot',
    exit: 3,
  },
  IMAP_E_CORRUPT_ZLIB: {
    errno: E.EIO,
    message: 'pixel data stream is damaged',
    hint: 'a stored-block header or the Adler-32 is wrong; run `imapfs fsck --repair MAP.png`',
    exit: 3,
  },
  IMAP_E_CORRUPT_SUPERBLOCK: {
    errno: E.EIO,
    message: 'superblock is damaged',
    hint: 'the imSB chunk fails its checks; restore the map from a copy',
    exit: 3,
  },
  IMAP_E_CORRUPT_METADATA: {
    errno: E.EIO,
    message: 'metadata is damaged or inconsistent',
    hint: 'run `imapfs fsck MAP.png` for details; the sidecar can be rebuilt from the map with `imapfs fsck --repair`',
    exit: 3,
  },
  IMAP_E_CORRUPT_CLUSTER: {
    errno: E.EIO,
    message: 'cluster checksum mismatch',
    hint: 'file data is damaged; run `imapfs fsck MAP.png` to list affected files',
    exit: 3,
  },
  IMAP_E_SIDECAR_MISMATCH: {
    errno: E.EIO,
    message: 'metadata sidecar does not belong to this map',
    hint: 'the .imapdb file beside the map has another uuid or generation; it is rebuilt from the map on mount',
    exit: 3,
  },
  IMAP_E_NO_SPACE: {
    errno: E.ENOSPC,
    message: 'no space left in the map',
    hint: 'enable growth (`map.grow: true`) or create a larger map with `imapfs mkfs --size`',
    exit: 1,
  },
  IMAP_E_DISK_FULL: {
    errno: E.ENOSPC,
    message: 'no space left on the device holding the map',
    hint: 'free space on the disk that holds the map file and its sidecar',
    exit: 1,
  },
  IMAP_E_EXISTS: {
    errno: E.EEXIST,
    message: 'file exists',
    hint: 'choose another name or remove the existing entry first',
    exit: 1,
  },
  IMAP_E_NOT_DIR: {
    errno: E.ENOTDIR,
    message: 'not a directory',
    hint: 'a component of the path is a file, not a directory',
    exit: 1,
  },
  IMAP_E_IS_DIR: {
    errno: E.EISDIR,
    message: 'is a directory',
    hint: 'the operation needs a file',
    exit: 1,
  },
  IMAP_E_NOT_EMPTY: {
    errno: E.ENOTEMPTY,
    message: 'directory not empty',
    hint: 'remove its entries first',
    exit: 1,
  },
  IMAP_E_NAME_TOO_LONG: {
    errno: E.ENAMETOOLONG,
    message: 'file name too long',
    hint: 'name components are limited to 255 bytes',
    exit: 1,
  },
  IMAP_E_INVALID: {
    errno: E.EINVAL,
    message: 'invalid argument',
    hint: 'check the arguments of the call',
    exit: 2,
  },
  IMAP_E_PERMISSION: {
    errno: E.EACCES,
    message: 'permission denied',
    hint: 'check the mode, owner and ACL of the file and its parent directories',
    exit: 1,
  },
  IMAP_E_NOT_PERMITTED: {
    errno: E.EPERM,
    message: 'operation not permitted',
    hint: 'only the owner or root may do this',
    exit: 1,
  },
  IMAP_E_READ_ONLY: {
    errno: E.EROFS,
    message: 'filesystem is mounted read-only',
    hint: 'remount without `-o ro`',
    exit: 1,
  },
  IMAP_E_LOOP: {
    errno: E.ELOOP,
    message: 'too many levels of symbolic links',
    hint: 'a symlink chain loops',
    exit: 1,
  },
  IMAP_E_NO_ATTR: {
    errno: E.ENODATA,
    message: 'no such extended attribute',
    hint: 'list attributes with `getfattr -d`',
    exit: 1,
  },
  IMAP_E_RANGE: {
    errno: E.ERANGE,
    message: 'buffer too small for the result',
    hint: 'query the size first',
    exit: 1,
  },
  IMAP_E_TOO_BIG: {
    errno: E.E2BIG,
    message: 'value too large',
    hint: 'extended attribute values are limited to 64 KiB',
    exit: 1,
  },
  IMAP_E_FILE_TOO_BIG: {
    errno: E.EFBIG,
    message: 'file too large',
    hint: 'the offset is beyond the largest file size imapfs supports',
    exit: 1,
  },
  IMAP_E_BUSY: {
    errno: E.EBUSY,
    message: 'resource busy',
    hint: 'the mountpoint is in use or already mounted; check `mount` and `imapfs umount`',
    exit: 1,
  },
  IMAP_E_MAP_LOCKED: {
    errno: E.EBUSY,
    message: 'map is in use by another imapfs process',
    hint: 'unmount it first with `imapfs umount MOUNTPOINT`',
    exit: 1,
  },
  IMAP_E_NOT_MOUNTED: {
    errno: E.EINVAL,
    message: 'not an imapfs mountpoint',
    hint: 'check the path with `mount | grep imapfs`',
    exit: 1,
  },
  IMAP_E_CONFIG: {
    errno: E.EINVAL,
    message: 'invalid configuration',
    hint: 'fix the named key in the config file; see docs/configuration.md',
    exit: 2,
  },
  IMAP_E_USAGE: {
    errno: E.EINVAL,
    message: 'invalid command-line usage',
    hint: 'run `imapfs --help`',
    exit: 2,
  },
  IMAP_E_ACTOR_FAILED: {
    errno: E.EIO,
    message: 'an actor of the daemon failed',
    hint: 'the supervisor restarts it; see the daemon log and `imapfs stats`',
    exit: 1,
  },
  IMAP_E_ACTOR_STOPPED: {
    errno: E.EIO,
    message: 'an actor of the daemon is stopping or stopped',
    hint: 'the daemon is shutting down; mount the map again',
    exit: 1,
  },
  IMAP_E_RECOVERY_FAILED: {
    errno: E.EIO,
    message: 'recovery of the map did not complete; nothing was mounted',
    hint: 'run `imapfs fsck --repair MAP`, then mount again; the daemon log (MAP.png.log) says what failed',
    exit: 1,
  },
  IMAP_E_OVERLOADED: {
    errno: E.EAGAIN,
    message: 'daemon queue is full',
    hint: 'retry; the daemon sheds background work first under overload',
    exit: 1,
  },
  IMAP_E_TIMEOUT: {
    errno: E.ETIMEDOUT,
    message: 'operation timed out',
    hint: 'the daemon did not answer in time; check `imapfs stats` and the daemon log',
    exit: 1,
  },
  IMAP_E_IO: {
    errno: E.EIO,
    message: 'input/output error',
    hint: 'see the daemon log for the underlying cause',
    exit: 1,
  },
  IMAP_E_NOT_SUPPORTED: {
    errno: E.EOPNOTSUPP,
    message: 'operation not supported',
    hint: 'imapfs does not implement this operation',
    exit: 1,
  },
  IMAP_E_ARCHIVE_TRUNCATED: {
    errno: E.EIO,
    message: 'archive is truncated',
    hint: 'the tar input ends early; members before the named offset were imported, the cut one was not: import a complete copy again',
    exit: 3,
  },
  IMAP_E_ARCHIVE_CORRUPT: {
    errno: E.EIO,
    message: 'archive is damaged or not a tar archive',
    hint: 'a header at the named byte offset fails its checksum or holds an invalid field; members before it were imported',
    exit: 3,
  },
  IMAP_E_INTERNAL: {
    errno: E.EIO,
    message: 'internal error',
    hint: 'this is a bug; please report it with the daemon log',
    exit: 1,
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_TABLE;

/** An error with a stable code. `detail` says what exactly failed (path, offset, expected value). */
export class ImapError extends Error {
  readonly code: ErrorCode;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const spec = ERROR_TABLE[code];
    super(detail ? `${spec.message}: ${detail}` : spec.message, options);
    this.name = 'ImapError';
    this.code = code;
    this.detail = detail;
  }

  get errno(): number {
    return ERROR_TABLE[this.code].errno;
  }

  get hint(): string {
    return ERROR_TABLE[this.code].hint;
  }

  get exitCode(): number {
    return ERROR_TABLE[this.code].exit;
  }

  toJSON(): { code: ErrorCode; errno: number; message: string; hint: string } {
    return { code: this.code, errno: this.errno, message: this.message, hint: this.hint };
  }
}

export function isImapError(err: unknown): err is ImapError {
  return err instanceof ImapError;
}

/** Maps a Node system error (fs, child_process) to our table, so the CLI never shows a raw stack. */
export function fromSystemError(err: unknown, detail: string): ImapError {
  if (err instanceof ImapError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new ImapError('IMAP_E_NOT_FOUND', detail, { cause: err });
    case 'ENOSPC':
    case 'EDQUOT':
      return new ImapError('IMAP_E_DISK_FULL', detail, { cause: err });
    case 'EACCES':
      return new ImapError('IMAP_E_PERMISSION', detail, { cause: err });
    case 'EPERM':
      return new ImapError('IMAP_E_NOT_PERMITTED', detail, { cause: err });
    case 'EROFS':
      return new ImapError('IMAP_E_READ_ONLY', detail, { cause: err });
    case 'EEXIST':
      return new ImapError('IMAP_E_EXISTS', detail, { cause: err });
    case 'ENOTDIR':
      return new ImapError('IMAP_E_NOT_DIR', detail, { cause: err });
    case 'EISDIR':
      return new ImapError('IMAP_E_IS_DIR', detail, { cause: err });
    case 'EBUSY':
      return new ImapError('IMAP_E_BUSY', detail, { cause: err });
    default: {
      const why = err instanceof Error ? err.message : String(err);
      return new ImapError('IMAP_E_IO', `${detail}: ${why}`, { cause: err });
    }
  }
}
