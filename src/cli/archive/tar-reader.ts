/**
 * Reads a tar archive member by member: POSIX ustar and pax (`x` and global `g` headers), GNU long
 * names (`L`, `K`) and base-256 numbers, V7 headers. Member data is streamed to the caller, never
 * held whole.
 *
 * An archive must end with its end-of-archive marker (a zero block; GNU tar writes two, one is
 * accepted). Input that ends before it — inside a header, inside member data, or at a member
 * boundary — is IMAP_E_ARCHIVE_TRUNCATED naming the byte offset (and the member, if inside one),
 * so an importer can remove a member it has not received whole. After the marker the rest of the
 * input (record padding) is read and ignored, so a producer writing into a pipe is not cut off.
 */
import { printable } from '../../fs/filesystem';
import { ImapError } from '../../protocol/errors';
import type { ByteSource } from './byte-source';
import { type EntryKind, type TarEntry } from './entry';
import { type PaxRecords, decodePax, parsePaxInteger, parsePaxTime } from './pax';
import { BLOCK, decodeUstar, isZeroBlock } from './tar-header';

/** Extended headers larger than this are refused (real ones are a few hundred bytes). */
const EXTENDED_MAX = 16 << 20;
const NS_PER_S = 1_000_000_000n;

const ch = (c: string): number => c.charCodeAt(0);

/** Type flags of members, by flag byte. Unknown flags are regular files, as POSIX prescribes. */
const KIND: ReadonlyMap<number, EntryKind> = new Map<number, EntryKind>([
  [0, 'file'],
  [ch('0'), 'file'],
  [ch('7'), 'file'], // contiguous file
  [ch('1'), 'hardlink'],
  [ch('2'), 'symlink'],
  [ch('3'), 'chardev'],
  [ch('4'), 'blockdev'],
  [ch('5'), 'directory'],
  [ch('6'), 'fifo'],
  [ch('D'), 'directory'], // GNU dumpdir: a directory whose data lists its contents
]);

/** GNU extensions imapfs does not restore: refused rather than imported wrong. */
const UNSUPPORTED: ReadonlyMap<number, string> = new Map([
  [ch('S'), 'an old GNU sparse file'],
  [ch('M'), 'a multi-volume continuation'],
  [ch('N'), 'an old GNU long-name script'],
]);

export class TarReader {
  /** Members returned so far. */
  members = 0;
  private readonly global: PaxRecords = new Map();
  private current: TarEntry | null = null;
  private remaining = 0;
  private padding = 0;

  constructor(private readonly src: ByteSource) {}

  /** The next member, or null after the end-of-archive marker. Unread data of the last one is skipped. */
  async next(): Promise<TarEntry | null> {
    if (this.current) await this.skipData();
    this.current = null;
    const local: PaxRecords = new Map();
    let longName: Buffer | null = null;
    let longLink: Buffer | null = null;
    let first = -1;
    for (;;) {
      const at = this.src.offset;
      if (first < 0) first = at;
      const pending = first !== at;
      const block = await this.readHeaderBlock(at, pending);
      if (isZeroBlock(block)) {
        if (pending)
          throw corrupt(`extended header at byte ${first} is followed by the end-of-archive marker`);
        await this.finishAtMarker(at);
        return null;
      }
      const h = decodeUstar(block, at);
      const flag = h.typeflag;
      if (flag === ch('x') || flag === ch('X') || flag === ch('g')) {
        decodePax(await this.readExtended(h.size, at), at, flag === ch('g') ? this.global : local);
        continue;
      }
      if (flag === ch('L') || flag === ch('K')) {
        const data = await this.readExtended(h.size, at);
        const nul = data.indexOf(0);
        const value = Buffer.from(nul < 0 ? data : data.subarray(0, nul));
        if (flag === ch('L')) longName = value;
        else longLink = value;
        continue;
      }
      const pax = new Map([...this.global, ...local]);
      const name = pax.get('path') ?? longName ?? joinPrefix(h.prefix, h.name);
      const unsupported = UNSUPPORTED.get(flag);
      if (unsupported || [...pax.keys()].some((k) => k.startsWith('GNU.sparse.'))) {
        throw new ImapError(
          'IMAP_E_NOT_SUPPORTED',
          `member ${printable(name)} at byte ${first} is ${unsupported ?? 'a GNU sparse file'}; re-create the archive without --sparse or --multi-volume`,
        );
      }
      const integer = (key: 'size' | 'uid' | 'gid', ustar: number): number => {
        const v = pax.get(key);
        return v ? parsePaxInteger(v, key, at) : ustar;
      };
      const time = (key: 'mtime' | 'atime'): bigint | null => {
        const v = pax.get(key);
        return v ? parsePaxTime(v, key, at) : null;
      };
      const size = integer('size', h.size);
      if (flag === ch('V')) {
        // A volume label names the archive, not a member: what preceded it applies to nothing.
        await this.skip(size, name, first);
        local.clear();
        longName = null;
        longLink = null;
        first = -1;
        continue;
      }
      let kind = KIND.get(flag) ?? 'file';
      // V7 tar marked directories with a trailing slash on a regular-file flag.
      if (kind === 'file' && (flag === 0 || flag === ch('0')) && name[name.length - 1] === 0x2f)
        kind = 'directory';
      const entry: TarEntry = {
        path: name,
        kind,
        mode: h.mode & 0o7777,
        uid: integer('uid', h.uid),
        gid: integer('gid', h.gid),
        size,
        mtimeNs: time('mtime') ?? h.mtime * NS_PER_S,
        atimeNs: time('atime'),
        linkpath: pax.get('linkpath') ?? longLink ?? h.linkname,
        devmajor: h.devmajor,
        devminor: h.devminor,
        offset: first,
      };
      // GNU tar skips `size` bytes after every member but a directory, whose size is not data.
      this.remaining = flag === ch('5') ? 0 : size;
      this.padding = padTo(this.remaining);
      this.current = entry;
      this.members += 1;
      return entry;
    }
  }

  /** Streams the current member's data to `sink` (views valid during the call only). */
  async data(sink: (bytes: Buffer) => void): Promise<void> {
    const entry = this.current;
    if (!entry) throw new ImapError('IMAP_E_INTERNAL', 'TarReader.data without a current member');
    await this.consume(entry, sink);
  }

  private async skipData(): Promise<void> {
    if (this.current) await this.consume(this.current, () => undefined);
  }

  private async consume(entry: TarEntry, sink: (bytes: Buffer) => void): Promise<void> {
    const want = this.remaining;
    const got = await this.src.stream(want, sink);
    this.remaining -= got;
    if (got < want) {
      throw truncated(
        `member ${printable(entry.path)} (header at byte ${entry.offset}): the archive ends at byte ${this.src.offset}, after ${entry.size - this.remaining} of its ${entry.size} data bytes`,
      );
    }
    await this.readPadding(`member ${printable(entry.path)} (header at byte ${entry.offset})`);
  }

  private async skip(size: number, name: Buffer, at: number): Promise<void> {
    const got = await this.src.stream(size, () => undefined);
    if (got < size)
      throw truncated(`the archive ends at byte ${this.src.offset}, inside ${printable(name)} at byte ${at}`);
    this.padding = padTo(size);
    await this.readPadding(`member ${printable(name)} (header at byte ${at})`);
  }

  private async readPadding(what: string): Promise<void> {
    if (this.padding === 0) return;
    const { bytes } = await this.src.readExact(this.padding);
    if (!bytes)
      throw truncated(`the archive ends at byte ${this.src.offset}, in the block padding of ${what}`);
    this.padding = 0;
  }

  private async readHeaderBlock(at: number, pending: boolean): Promise<Buffer> {
    const { bytes, got } = await this.src.readExact(BLOCK);
    if (bytes) return bytes;
    if (got > 0)
      throw truncated(`the archive ends at byte ${this.src.offset}, inside the header block at byte ${at}`);
    if (pending)
      throw truncated(`the archive ends at byte ${at}, after an extended header and before its member`);
    if (at === 0) throw truncated('the archive is empty');
    throw truncated(
      `the archive ends at byte ${at} without its end-of-archive marker (after ${this.members} members); a member may be missing`,
    );
  }

  private async readExtended(size: number, at: number): Promise<Buffer> {
    if (size > EXTENDED_MAX) throw corrupt(`extended header at byte ${at} claims ${size} bytes`);
    const { bytes } = size === 0 ? { bytes: Buffer.alloc(0) } : await this.src.readExact(size);
    if (!bytes)
      throw truncated(
        `the archive ends at byte ${this.src.offset}, inside the extended header at byte ${at}`,
      );
    const copy = Buffer.from(bytes); // readExact may return a view of a chunk about to be replaced
    this.padding = padTo(size);
    await this.readPadding(`the extended header at byte ${at}`);
    return copy;
  }

  /** After the first zero block: a second one, or the end of input, ends the archive. */
  private async finishAtMarker(at: number): Promise<void> {
    const { bytes } = await this.src.readExact(BLOCK);
    if (bytes && !isZeroBlock(bytes)) {
      throw corrupt(
        `a zero block at byte ${at} is followed by more headers (a damaged or concatenated archive)`,
      );
    }
    await this.src.drain();
  }
}

function joinPrefix(prefix: Buffer, name: Buffer): Buffer {
  return prefix.length === 0 ? name : Buffer.concat([prefix, Buffer.from('/'), name]);
}

function padTo(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function truncated(detail: string): ImapError {
  return new ImapError('IMAP_E_ARCHIVE_TRUNCATED', detail);
}

function corrupt(detail: string): ImapError {
  return new ImapError('IMAP_E_ARCHIVE_CORRUPT', detail);
}
