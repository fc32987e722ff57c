/**
 * Writes a POSIX pax archive: a ustar header per member, preceded by a pax `x` header when the
 * member needs one. Output goes through one reused 1 MiB buffer to an async sink (a file or stdout,
 * with backpressure), so memory stays flat for any member size.
 *
 * A pax header carries what ustar cannot: `path`/`linkpath` when too long or not ASCII, `size`,
 * `uid`, `gid` past octal range, `mtime` with nanoseconds (or before 1970), and `atime`. Names are
 * written as their raw bytes, as GNU tar does — also when they are not UTF-8. We do not add
 * `hdrcharset=BINARY` (POSIX's marker for that case): GNU tar 1.34 warns on every member that has it
 * ("Ignoring unknown extended header keyword") while extracting the bytes the same way.
 */
import { ImapError } from '../../protocol/errors';
import { CHUNK } from '../tree-copy';
import { type TarEntry, TYPEFLAG } from './entry';
import { encodePax, formatPaxTime } from './pax';
import {
  BLOCK,
  ID_OCTAL_MAX,
  LINKNAME_MAX,
  NAME_MAX,
  PREFIX_MAX,
  SIZE_OCTAL_MAX,
  TIME_OCTAL_MAX,
  encodeUstar,
} from './tar-header';

export type Member = Omit<TarEntry, 'offset'>;

/** tar pads the archive to whole records of 20 blocks (the default blocking factor). */
const RECORD = 20 * BLOCK;
const NS_PER_S = 1_000_000_000n;
const PAX_TYPEFLAG = 0x78; // 'x'
const EMPTY = Buffer.alloc(0);

export class TarWriter {
  /** Archive bytes produced so far. */
  bytes = 0;
  private readonly out = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  private owed = 0;
  private dataSize = 0;

  /** `sink` must be done with the buffer when its promise settles: the buffer is then reused. */
  constructor(private readonly sink: (bytes: Buffer) => Promise<void>) {}

  /** Starts a member; a regular file's `size` bytes must follow through `data`, then `endMember`. */
  async member(m: Member): Promise<void> {
    if (this.owed !== 0)
      throw new ImapError('IMAP_E_INTERNAL', `tar member started with ${this.owed} bytes owed`);
    const records = paxRecords(m);
    if (records.length > 0) {
      const data = encodePax(records);
      await this.put(
        encodeUstar({
          name: paxHeaderName(m.path),
          mode: 0o644,
          uid: 0,
          gid: 0,
          size: data.length,
          mtime: ustarSeconds(m.mtimeNs),
          typeflag: PAX_TYPEFLAG,
          linkname: EMPTY,
          devmajor: 0,
          devminor: 0,
          prefix: EMPTY,
        }),
      );
      await this.put(data);
      await this.pad(data.length);
    }
    const split = splitName(m.path) ?? { prefix: EMPTY, name: m.path.subarray(0, NAME_MAX) };
    const size = m.kind === 'file' ? m.size : 0;
    await this.put(
      encodeUstar({
        name: split.name,
        mode: m.mode & 0o7777,
        uid: m.uid,
        gid: m.gid,
        size,
        mtime: ustarSeconds(m.mtimeNs),
        typeflag: TYPEFLAG[m.kind],
        linkname: m.linkpath.subarray(0, LINKNAME_MAX),
        devmajor: m.devmajor,
        devminor: m.devminor,
        prefix: split.prefix,
      }),
    );
    this.owed = size;
    this.dataSize = size;
  }

  async data(chunk: Buffer): Promise<void> {
    if (chunk.length > this.owed) {
      throw new ImapError('IMAP_E_INTERNAL', `tar member data: ${chunk.length} bytes, ${this.owed} owed`);
    }
    this.owed -= chunk.length;
    await this.put(chunk);
  }

  async endMember(): Promise<void> {
    if (this.owed !== 0) throw new ImapError('IMAP_E_INTERNAL', `tar member ended ${this.owed} bytes short`);
    await this.pad(this.dataSize);
    this.dataSize = 0;
  }

  /** The end-of-archive marker (two zero blocks), padding to a whole record, and the last flush. */
  async finish(): Promise<void> {
    await this.zeros(2 * BLOCK);
    await this.zeros((RECORD - (this.bytes % RECORD)) % RECORD);
    await this.flush();
  }

  private async pad(size: number): Promise<void> {
    await this.zeros((BLOCK - (size % BLOCK)) % BLOCK);
  }

  private async zeros(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.used === this.out.length) await this.flush();
      const take = Math.min(left, this.out.length - this.used);
      this.out.fill(0, this.used, this.used + take);
      this.used += take;
      this.bytes += take;
      left -= take;
    }
  }

  private async put(bytes: Buffer): Promise<void> {
    let at = 0;
    while (at < bytes.length) {
      if (this.used === this.out.length) await this.flush();
      const take = Math.min(bytes.length - at, this.out.length - this.used);
      bytes.copy(this.out, this.used, at, at + take);
      this.used += take;
      this.bytes += take;
      at += take;
    }
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const n = this.used;
    this.used = 0;
    await this.sink(this.out.subarray(0, n));
  }
}

function paxRecords(m: Member): Array<[string, Buffer]> {
  const records: Array<[string, Buffer]> = [];
  if (!splitName(m.path) || !isAscii(m.path)) records.push(['path', m.path]);
  if (m.linkpath.length > LINKNAME_MAX || !isAscii(m.linkpath)) records.push(['linkpath', m.linkpath]);
  if (m.kind === 'file' && BigInt(m.size) > SIZE_OCTAL_MAX)
    records.push(['size', Buffer.from(String(m.size))]);
  if (BigInt(m.uid) > ID_OCTAL_MAX) records.push(['uid', Buffer.from(String(m.uid))]);
  if (BigInt(m.gid) > ID_OCTAL_MAX) records.push(['gid', Buffer.from(String(m.gid))]);
  const secs = m.mtimeNs / NS_PER_S;
  if (m.mtimeNs % NS_PER_S !== 0n || m.mtimeNs < 0n || secs > TIME_OCTAL_MAX) {
    records.push(['mtime', Buffer.from(formatPaxTime(m.mtimeNs))]);
  }
  if (m.atimeNs !== null) records.push(['atime', Buffer.from(formatPaxTime(m.atimeNs))]);
  return records;
}

/** ustar's name and prefix for a path, or null when it fits neither way (pax `path` carries it). */
function splitName(path: Buffer): { prefix: Buffer; name: Buffer } | null {
  if (path.length <= NAME_MAX) return { prefix: EMPTY, name: path };
  // A '/' that leaves at most 155 bytes before it and 1 to 100 bytes after it.
  const slash = path.lastIndexOf(0x2f, Math.min(PREFIX_MAX, path.length - 2));
  if (slash < 0 || path.length - slash - 1 > NAME_MAX) return null;
  return { prefix: path.subarray(0, slash), name: path.subarray(slash + 1) };
}

/** The pax header's own name, GNU style: PaxHeaders/ and the member's last component. */
function paxHeaderName(path: Buffer): Buffer {
  let end = path.length;
  while (end > 1 && path[end - 1] === 0x2f) end -= 1;
  const base = path.subarray(path.lastIndexOf(0x2f, end - 1) + 1, end);
  return Buffer.concat([Buffer.from('PaxHeaders/'), base]).subarray(0, NAME_MAX);
}

/** Whole seconds for the ustar field; outside its range the pax `mtime` record is authoritative. */
function ustarSeconds(ns: bigint): bigint {
  return ns < 0n ? 0n : ns / NS_PER_S;
}

function isAscii(bytes: Buffer): boolean {
  for (const b of bytes) if (b >= 0x80) return false;
  return true;
}
