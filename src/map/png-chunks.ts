/**
 * PNG chunk encoding: CRCs, chunk framing, IHDR, stored deflate block headers. Pure functions over
 * caller-provided buffers so hot paths allocate nothing.
 */
import { crc32 } from 'node:zlib';
import { CHUNK_HEADER, STORED_HEADER } from './layout';

export const TYPE_IHDR = 'IHDR';
export const TYPE_IDAT = 'IDAT';
export const TYPE_IEND = 'IEND';
/** Private, ancillary, unsafe-to-copy: a copy tool that does not know imapfs must drop it with the pixels' meaning. */
export const TYPE_SUPERBLOCK = 'imSB';
export const TYPE_METADATA = 'imMD';

/** CRC of a chunk whose type and data are buf[off+4, off+8+len) (i.e. off is the chunk start). */
export function chunkCrc(buf: Uint8Array, chunkStart: number, dataLength: number): number {
  return crc32(buf.subarray(chunkStart + 4, chunkStart + CHUNK_HEADER + dataLength));
}

/** Writes length and type at `at`; the caller fills the data and then calls sealChunk. */
export function writeChunkHeader(buf: Buffer, at: number, type: string, dataLength: number): void {
  buf.writeUInt32BE(dataLength, at);
  buf.write(type, at + 4, 4, 'latin1');
}

/** Computes and stores the CRC of a chunk laid out at `at`; returns the offset after it. */
export function sealChunk(buf: Buffer, at: number, dataLength: number): number {
  const crcAt = at + CHUNK_HEADER + dataLength;
  buf.writeUInt32BE(chunkCrc(buf, at, dataLength), crcAt);
  return crcAt + 4;
}

/** A whole chunk (header, data, CRC) at `at`; returns the offset after it. */
export function writeChunk(buf: Buffer, at: number, type: string, data: Uint8Array): number {
  writeChunkHeader(buf, at, type, data.length);
  buf.set(data, at + CHUNK_HEADER);
  return sealChunk(buf, at, data.length);
}

/** IHDR data: side×side, bit depth 8, colour type 6 (RGBA), deflate, adaptive filtering, no interlace. */
export function ihdrData(side: number): Buffer {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(side, 0);
  d.writeUInt32BE(side, 4);
  d[8] = 8;
  d[9] = 6;
  d[10] = 0;
  d[11] = 0;
  d[12] = 0;
  return d;
}

/** Stored deflate block header: BFINAL bit, BTYPE 00 (then byte aligned), LEN and NLEN little endian. */
export function writeStoredHeader(buf: Uint8Array, at: number, length: number, final: boolean): void {
  buf[at] = final ? 1 : 0;
  buf[at + 1] = length & 0xff;
  buf[at + 2] = (length >>> 8) & 0xff;
  buf[at + 3] = ~length & 0xff;
  buf[at + 4] = (~length >>> 8) & 0xff;
}

export function storedHeaderMatches(buf: Uint8Array, at: number, length: number, final: boolean): boolean {
  return (
    buf[at] === (final ? 1 : 0) &&
    buf[at + 1] === (length & 0xff) &&
    buf[at + 2] === ((length >>> 8) & 0xff) &&
    buf[at + 3] === (~length & 0xff) &&
    buf[at + 4] === ((~length >>> 8) & 0xff)
  );
}

const zeroCrcCache = new Map<string, number>();

/**
 * CRC of a data chunk whose payload is all zeros. mkfs and growth reuse it for every empty block
 * instead of hashing zeros again.
 */
export function zeroBlockCrc(length: number, final: boolean): number {
  const key = `${length}:${final ? 1 : 0}`;
  const hit = zeroCrcCache.get(key);
  if (hit !== undefined) return hit;
  const buf = Buffer.alloc(4 + STORED_HEADER + length);
  buf.write(TYPE_IDAT, 0, 4, 'latin1');
  writeStoredHeader(buf, 4, length, final);
  const crc = crc32(buf);
  zeroCrcCache.set(key, crc);
  return crc;
}

/** The framing between two data chunks: CRC of the first, header of the second and its block header. */
export function writeBlockGap(
  buf: Buffer,
  at: number,
  prevCrc: number,
  nextLength: number,
  nextFinal: boolean,
): void {
  buf.writeUInt32BE(prevCrc >>> 0, at);
  writeChunkHeader(buf, at + 4, TYPE_IDAT, STORED_HEADER + nextLength);
  writeStoredHeader(buf, at + 4 + CHUNK_HEADER, nextLength, nextFinal);
}
