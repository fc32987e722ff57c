/**
 * File geometry of a map (format v1): where every chunk, stored block and pixel byte lives. All of
 * it follows from the side and the block payload P, which is what makes in-place writes possible.
 *
 *   0                     PNG signature (8)
 *   8                     IHDR chunk (12 + 13)
 *   33                    imSB chunk (12 + 64)            superblock
 *   109                   IDAT chunk (12 + 2)             zlib header 78 01
 *   123 = dataOffset      IDAT chunk b, b = 0..blockCount-1, each (12 + 5 + len_b):
 *                           length, "IDAT", stored-block header (5), len_b raw bytes, CRC
 *   adlerChunkOffset      IDAT chunk (12 + 4)             Adler-32 of the raw stream
 *   tailOffset            [imMD chunk]                    metadata copy (optional)
 *                         IEND chunk (12)
 *
 * The raw (filtered) stream is `side` rows of (filter byte 0, 4·side pixel bytes).
 */
import { ImapError } from '../protocol/errors';
import { TILE_SIDE } from './hilbert';

export const CLUSTER_SIZE = 4096;
export const FORMAT_VERSION = 1;
export const BLOCK_PAYLOAD = 32768;
export const MIN_SIDE = 32;
/** 65536² RGBA is 16 GiB of clusters; file offsets stay far below 2^53. */
export const MAX_SIDE = 65536;

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Length + type before a chunk's data, CRC after it. */
export const CHUNK_HEADER = 8;
export const CHUNK_OVERHEAD = 12;
export const STORED_HEADER = 5;
/** Bytes between the last payload byte of block b and the first of block b+1 (CRC, header, block header). */
export const BLOCK_GAP = CHUNK_OVERHEAD + STORED_HEADER;
export const IHDR_LENGTH = 13;
export const SUPERBLOCK_LENGTH = 64;
export const ZLIB_HEADER = Buffer.from([0x78, 0x01]);
/** Adler-32 modulus. */
export const ADLER_MOD = 65521;

export const IHDR_OFFSET = PNG_SIGNATURE.length;
export const SUPERBLOCK_CHUNK_OFFSET = IHDR_OFFSET + CHUNK_OVERHEAD + IHDR_LENGTH;
export const ZLIB_CHUNK_OFFSET = SUPERBLOCK_CHUNK_OFFSET + CHUNK_OVERHEAD + SUPERBLOCK_LENGTH;
export const DATA_OFFSET = ZLIB_CHUNK_OFFSET + CHUNK_OVERHEAD + ZLIB_HEADER.length;

export function isValidSide(side: number): boolean {
  return Number.isInteger(side) && side >= MIN_SIDE && side <= MAX_SIDE && (side & (side - 1)) === 0;
}

export class MapLayout {
  readonly side: number;
  readonly order: number;
  /** Bytes per raw row: filter byte + 4·side. */
  readonly rowLength: number;
  readonly rawLength: number;
  readonly blockPayload: number;
  readonly blockCount: number;
  readonly lastBlockLength: number;
  /** File distance between consecutive data chunks. */
  readonly blockStride: number;
  readonly clusterCount: number;
  readonly adlerChunkOffset: number;
  /** Where imMD (if any) and IEND start. */
  readonly tailOffset: number;

  constructor(side: number, blockPayload = BLOCK_PAYLOAD) {
    if (!isValidSide(side)) {
      throw new ImapError('IMAP_E_INVALID', `side ${side} is not a power of two in ${MIN_SIDE}..${MAX_SIDE}`);
    }
    if (!Number.isInteger(blockPayload) || blockPayload < 1024 || blockPayload > 65535) {
      throw new ImapError('IMAP_E_INVALID', `block payload ${blockPayload} is outside 1024..65535`);
    }
    this.side = side;
    this.order = Math.round(Math.log2(side));
    this.rowLength = 1 + 4 * side;
    this.rawLength = side * this.rowLength;
    this.blockPayload = blockPayload;
    this.blockCount = Math.ceil(this.rawLength / blockPayload);
    this.lastBlockLength = this.rawLength - (this.blockCount - 1) * blockPayload;
    this.blockStride = BLOCK_GAP + blockPayload;
    this.clusterCount = (side / TILE_SIDE) * (side / TILE_SIDE);
    this.adlerChunkOffset =
      DATA_OFFSET + (this.blockCount - 1) * this.blockStride + BLOCK_GAP + this.lastBlockLength;
    this.tailOffset = this.adlerChunkOffset + CHUNK_OVERHEAD + 4;
  }

  blockLength(block: number): number {
    return block === this.blockCount - 1 ? this.lastBlockLength : this.blockPayload;
  }

  /** File offset of data chunk `block` (its length field). */
  blockChunkOffset(block: number): number {
    return DATA_OFFSET + block * this.blockStride;
  }

  /** Raw stream offset of the first byte of `block`. */
  blockRawOffset(block: number): number {
    return block * this.blockPayload;
  }

  /** File offset of raw stream byte r: base + ⌊r/P⌋·(17+P) + 8 + 5 + (r mod P). */
  fileOffsetOfRaw(r: number): number {
    const block = Math.floor(r / this.blockPayload);
    return (
      DATA_OFFSET + block * this.blockStride + CHUNK_HEADER + STORED_HEADER + (r - block * this.blockPayload)
    );
  }

  /** Raw stream offset of pixel (x, y)'s R byte. */
  rawOffsetOfPixel(x: number, y: number): number {
    return y * this.rowLength + 1 + 4 * x;
  }

  /** Smallest file that holds the whole structure without a metadata chunk. */
  get minimumFileSize(): number {
    return this.tailOffset + CHUNK_OVERHEAD;
  }
}
