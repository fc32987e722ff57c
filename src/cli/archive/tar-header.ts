/**
 * The 512-byte tar header block (POSIX ustar, read also in its GNU and V7 variants): field layout,
 * numeric fields (octal, or GNU base-256 for values octal cannot hold) and the header checksum.
 * Text fields are raw bytes: names are Buffers end to end, whatever their encoding.
 */
import { ImapError } from '../../protocol/errors';

export const BLOCK = 512;

export interface UstarFields {
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (the header holds whole seconds; pax carries the rest). */
  mtime: bigint;
  /** The type flag byte, such as 0x30 ('0') for a regular file. */
  typeflag: number;
  linkname: Buffer;
  devmajor: number;
  devminor: number;
  /** The ustar prefix (joined to name with '/'); empty for GNU and V7 headers, which lack it. */
  prefix: Buffer;
}

// Field offsets and widths (POSIX.1-2017, pax "ustar Interchange Format").
const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;

const USTAR_MAGIC = Buffer.from('ustar\x0000', 'latin1'); // magic "ustar\0" + version "00"
const GNU_MAGIC = Buffer.from('ustar  \x00', 'latin1'); // magic "ustar " + version " \0"

export const NAME_MAX = F.name[1];
export const PREFIX_MAX = F.prefix[1];
export const LINKNAME_MAX = F.linkname[1];
/** The largest value an octal field of `width` bytes holds (width - 1 digits and a terminator). */
export const octalMax = (width: number): bigint => 8n ** BigInt(width - 1) - 1n;
export const SIZE_OCTAL_MAX = octalMax(F.size[1]);
export const ID_OCTAL_MAX = octalMax(F.uid[1]);
export const TIME_OCTAL_MAX = octalMax(F.mtime[1]);

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i += 1) if (block[i] !== 0) return false;
  return true;
}

/** A ustar header. Values octal cannot hold are written base-256 (GNU), or 0 if negative. */
export function encodeUstar(f: UstarFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  putBytes(b, F.name, f.name);
  putNumber(b, F.mode, BigInt(f.mode));
  putNumber(b, F.uid, BigInt(f.uid));
  putNumber(b, F.gid, BigInt(f.gid));
  putNumber(b, F.size, BigInt(f.size));
  putNumber(b, F.mtime, f.mtime);
  b[F.typeflag[0]] = f.typeflag;
  putBytes(b, F.linkname, f.linkname);
  USTAR_MAGIC.copy(b, F.magic[0]);
  putNumber(b, F.devmajor, BigInt(f.devmajor));
  putNumber(b, F.devminor, BigInt(f.devminor));
  putBytes(b, F.prefix, f.prefix);
  // The checksum is computed with its own field as spaces, then written as 6 digits, NUL, space.
  b.fill(0x20, F.chksum[0], F.chksum[0] + F.chksum[1]);
  const sum = checksum(b);
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, F.chksum[0], 'latin1');
  return b;
}

/** Decodes a non-zero header block; a bad checksum or field is IMAP_E_ARCHIVE_CORRUPT at `offset`. */
export function decodeUstar(b: Buffer, offset: number): UstarFields {
  const stored = parseNumber(b, F.chksum, offset, 'checksum');
  if (stored !== BigInt(checksum(b)) && stored !== BigInt(signedChecksum(b))) {
    throw new ImapError(
      'IMAP_E_ARCHIVE_CORRUPT',
      `header checksum mismatch at byte ${offset} (not a tar archive, or damaged)`,
    );
  }
  const magic = b.subarray(F.magic[0], F.magic[0] + 8);
  const ustar = magic.equals(USTAR_MAGIC) || magic.subarray(0, 6).equals(USTAR_MAGIC.subarray(0, 6));
  const gnu = magic.equals(GNU_MAGIC);
  const num = (field: readonly [number, number], what: string): number => {
    const v = parseNumber(b, field, offset, what);
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ImapError(
        'IMAP_E_ARCHIVE_CORRUPT',
        `${what} ${v} out of range in the header at byte ${offset}`,
      );
    }
    return Number(v);
  };
  return {
    name: getBytes(b, F.name),
    mode: num(F.mode, 'mode'),
    uid: num(F.uid, 'uid'),
    gid: num(F.gid, 'gid'),
    size: num(F.size, 'size'),
    mtime: parseNumber(b, F.mtime, offset, 'mtime'),
    typeflag: b[F.typeflag[0]] ?? 0,
    linkname: getBytes(b, F.linkname),
    devmajor: ustar || gnu ? num(F.devmajor, 'devmajor') : 0,
    devminor: ustar || gnu ? num(F.devminor, 'devminor') : 0,
    // Old GNU headers keep atime/ctime where ustar keeps the prefix: only true ustar has one.
    prefix: ustar && !gnu ? getBytes(b, F.prefix) : Buffer.alloc(0),
  };
}

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i += 1) {
    const inField = i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1];
    sum += inField ? 0x20 : (b[i] ?? 0);
  }
  return sum;
}

/** Some historic writers summed signed chars; readers such as GNU tar accept either sum. */
function signedChecksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i += 1) {
    const inField = i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1];
    const byte = b[i] ?? 0;
    sum += inField ? 0x20 : byte >= 0x80 ? byte - 0x100 : byte;
  }
  return sum;
}

function putBytes(b: Buffer, [at, width]: readonly [number, number], value: Buffer): void {
  value.copy(b, at, 0, Math.min(width, value.length));
}

/** A text field up to its first NUL. */
function getBytes(b: Buffer, [at, width]: readonly [number, number]): Buffer {
  const field = b.subarray(at, at + width);
  const nul = field.indexOf(0);
  return Buffer.from(nul < 0 ? field : field.subarray(0, nul));
}

function putNumber(b: Buffer, [at, width]: readonly [number, number], value: bigint): void {
  if (value < 0n) return; // only mtime can be negative; its pax record carries it
  if (value <= octalMax(width)) {
    b.write(`${value.toString(8).padStart(width - 1, '0')}\0`, at, 'latin1');
    return;
  }
  // GNU base-256: the first byte's top bit set, the value big-endian in the rest.
  let v = value;
  for (let i = width - 1; i > 0; i -= 1) {
    b[at + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  b[at] = 0x80;
}

/** Octal digits (leading spaces, trailing NUL/spaces), or GNU base-256 (two's complement). */
function parseNumber(
  b: Buffer,
  [at, width]: readonly [number, number],
  offset: number,
  what: string,
): bigint {
  const first = b[at] ?? 0;
  if (first & 0x80) {
    let v = BigInt(first & 0x7f);
    for (let i = 1; i < width; i += 1) v = (v << 8n) | BigInt(b[at + i] ?? 0);
    // 0xff leads a negative number: the field is a two's complement of width * 8 bits.
    return first === 0xff ? v - (1n << BigInt(width * 8 - 1)) : v;
  }
  const text = b
    .toString('latin1', at, at + width)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0n;
  if (!/^[0-7]+$/.test(text)) {
    throw new ImapError(
      'IMAP_E_ARCHIVE_CORRUPT',
      `${what} field ${JSON.stringify(text)} is not octal in the header at byte ${offset}`,
    );
  }
  return BigInt(`0o${text}`);
}
