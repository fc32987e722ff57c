/**
 * Reading a map's fixed structure at open: signature, IHDR, superblock, and the few chunk headers
 * whose place follows from the geometry (zlib header, first data chunk, Adler-32 chunk, tail).
 * Cheap (a handful of small reads); the full scan is integrity.ts.
 */
import { readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { ImapError, fromSystemError } from '../protocol/errors';
import {
  CHUNK_HEADER,
  CHUNK_OVERHEAD,
  DATA_OFFSET,
  IHDR_LENGTH,
  IHDR_OFFSET,
  MapLayout,
  PNG_SIGNATURE,
  STORED_HEADER,
  SUPERBLOCK_CHUNK_OFFSET,
  SUPERBLOCK_LENGTH,
  ZLIB_CHUNK_OFFSET,
  ZLIB_HEADER,
} from './layout';
import {
  ihdrData,
  sealChunk,
  writeChunk,
  writeChunkHeader,
  TYPE_IDAT,
  TYPE_IEND,
  TYPE_IHDR,
  TYPE_METADATA,
  TYPE_SUPERBLOCK,
} from './png-chunks';
import { decodeSuperblock, encodeSuperblock, type Superblock } from './superblock';

export interface MapStructure {
  superblock: Superblock;
  layout: MapLayout;
  /** Value stored in the Adler-32 chunk (trusted only when the map is clean). */
  storedAdler: number;
  /** Data length of the imMD chunk at the tail, or -1 when the tail is just IEND. */
  metadataLength: number;
  /** Offset just after IEND. */
  end: number;
}

/** pread that fails loudly instead of returning short, mapped to our error table. */
export function readExactly(
  fd: number,
  buf: Buffer,
  off: number,
  len: number,
  pos: number,
  what: string,
): void {
  let done = 0;
  while (done < len) {
    let n: number;
    try {
      n = readSync(fd, buf, off + done, len - done, pos + done);
    } catch (err) {
      throw fromSystemError(err, `reading ${what}`);
    }
    if (n === 0)
      throw new ImapError('IMAP_E_TRUNCATED', `end of file while reading ${what} at ${pos + done}`);
    done += n;
  }
}

export function chunkType(buf: Buffer, at: number): string {
  return buf.toString('latin1', at + 4, at + 8);
}

export function readStructure(fd: number, size: number): MapStructure {
  const head = Buffer.alloc(DATA_OFFSET + CHUNK_HEADER + STORED_HEADER);
  const headLen = Math.min(size, head.length);
  readExactly(fd, head, 0, headLen, 0, 'PNG header');

  if (size === 0) throw new ImapError('IMAP_E_NOT_A_MAP', 'empty file');
  const sigLen = Math.min(headLen, PNG_SIGNATURE.length);
  if (!head.subarray(0, sigLen).equals(PNG_SIGNATURE.subarray(0, sigLen))) {
    throw new ImapError('IMAP_E_NOT_A_MAP', 'no PNG signature');
  }
  const need = (end: number, what: string): void => {
    if (size < end) throw new ImapError('IMAP_E_TRUNCATED', `file of ${size} bytes ends inside ${what}`);
  };
  need(IHDR_OFFSET + CHUNK_OVERHEAD + IHDR_LENGTH, 'IHDR');
  if (head.readUInt32BE(IHDR_OFFSET) !== IHDR_LENGTH || chunkType(head, IHDR_OFFSET) !== TYPE_IHDR) {
    throw new ImapError('IMAP_E_CORRUPT_HEADER', 'first chunk is not a 13-byte IHDR');
  }
  const ihdrCrcAt = IHDR_OFFSET + CHUNK_HEADER + IHDR_LENGTH;
  if (crc32(head.subarray(IHDR_OFFSET + 4, ihdrCrcAt)) !== head.readUInt32BE(ihdrCrcAt)) {
    throw new ImapError('IMAP_E_CORRUPT_CHUNK', 'IHDR CRC mismatch');
  }

  need(SUPERBLOCK_CHUNK_OFFSET + CHUNK_HEADER, 'the superblock chunk header');
  if (chunkType(head, SUPERBLOCK_CHUNK_OFFSET) !== TYPE_SUPERBLOCK) {
    throw new ImapError('IMAP_E_NOT_A_MAP', 'PNG has no imapfs superblock (imSB) after IHDR');
  }
  const sbLen = head.readUInt32BE(SUPERBLOCK_CHUNK_OFFSET);
  // A future version may have a longer superblock; read whatever length it claims, within reason.
  if (sbLen > 1 << 16) throw new ImapError('IMAP_E_CORRUPT_SUPERBLOCK', `imSB length ${sbLen}`);
  need(SUPERBLOCK_CHUNK_OFFSET + CHUNK_OVERHEAD + sbLen, 'the superblock');
  const sbChunk = Buffer.alloc(CHUNK_OVERHEAD + sbLen);
  readExactly(fd, sbChunk, 0, sbChunk.length, SUPERBLOCK_CHUNK_OFFSET, TYPE_SUPERBLOCK);
  if (crc32(sbChunk.subarray(4, CHUNK_HEADER + sbLen)) !== sbChunk.readUInt32BE(CHUNK_HEADER + sbLen)) {
    throw new ImapError('IMAP_E_CORRUPT_SUPERBLOCK', 'imSB CRC mismatch');
  }
  const superblock = decodeSuperblock(sbChunk.subarray(CHUNK_HEADER, CHUNK_HEADER + sbLen));

  const ihdr = head.subarray(IHDR_OFFSET + CHUNK_HEADER, IHDR_OFFSET + CHUNK_HEADER + IHDR_LENGTH);
  if (!ihdr.equals(ihdrData(superblock.side))) {
    throw new ImapError('IMAP_E_CORRUPT_HEADER', `IHDR does not describe a ${superblock.side}² RGBA8 map`);
  }
  const layout = new MapLayout(superblock.side, superblock.blockPayload);
  need(layout.minimumFileSize, 'the pixel data');

  if (
    head.readUInt32BE(ZLIB_CHUNK_OFFSET) !== ZLIB_HEADER.length ||
    chunkType(head, ZLIB_CHUNK_OFFSET) !== TYPE_IDAT ||
    !head.subarray(ZLIB_CHUNK_OFFSET + CHUNK_HEADER, ZLIB_CHUNK_OFFSET + CHUNK_HEADER + 2).equals(ZLIB_HEADER)
  ) {
    throw new ImapError('IMAP_E_CORRUPT_HEADER', 'first IDAT is not the 2-byte zlib header');
  }
  if (
    head.readUInt32BE(DATA_OFFSET) !== STORED_HEADER + layout.blockLength(0) ||
    chunkType(head, DATA_OFFSET) !== TYPE_IDAT
  ) {
    throw new ImapError('IMAP_E_CORRUPT_HEADER', 'first data chunk has the wrong length or type');
  }

  const adlerChunk = Buffer.alloc(CHUNK_OVERHEAD + 4);
  readExactly(fd, adlerChunk, 0, adlerChunk.length, layout.adlerChunkOffset, 'Adler-32 chunk');
  if (adlerChunk.readUInt32BE(0) !== 4 || chunkType(adlerChunk, 0) !== TYPE_IDAT) {
    throw new ImapError('IMAP_E_CORRUPT_HEADER', `no 4-byte Adler-32 IDAT at ${layout.adlerChunkOffset}`);
  }
  const storedAdler = adlerChunk.readUInt32BE(CHUNK_HEADER);

  const tail = readTail(fd, size, layout);
  return { superblock, layout, storedAdler, metadataLength: tail.metadataLength, end: tail.end };
}

/** The tail: optional imMD, then IEND. Throws TRUNCATED or CORRUPT_HEADER. */
export function readTail(
  fd: number,
  size: number,
  layout: MapLayout,
): { metadataLength: number; end: number } {
  const hdr = Buffer.alloc(CHUNK_HEADER);
  readExactly(fd, hdr, 0, CHUNK_HEADER, layout.tailOffset, 'tail chunk');
  const type = chunkType(hdr, 0);
  let metadataLength = -1;
  let iendAt = layout.tailOffset;
  if (type === TYPE_METADATA) {
    metadataLength = hdr.readUInt32BE(0);
    iendAt = layout.tailOffset + CHUNK_OVERHEAD + metadataLength;
    if (size < iendAt + CHUNK_OVERHEAD) {
      throw new ImapError('IMAP_E_TRUNCATED', `file of ${size} bytes ends inside the metadata chunk or IEND`);
    }
    readExactly(fd, hdr, 0, CHUNK_HEADER, iendAt, 'IEND');
  } else if (type !== TYPE_IEND) {
    throw new ImapError(
      'IMAP_E_CORRUPT_HEADER',
      `unexpected chunk after the pixel data at ${layout.tailOffset}`,
    );
  }
  if (chunkType(hdr, 0) !== TYPE_IEND || hdr.readUInt32BE(0) !== 0) {
    throw new ImapError('IMAP_E_CORRUPT_HEADER', `no IEND at ${iendAt}`);
  }
  return { metadataLength, end: iendAt + CHUNK_OVERHEAD };
}

/** The bytes of a map before its first data chunk: signature, IHDR, imSB, zlib-header IDAT. */
export function buildHead(superblock: Superblock): Buffer {
  const head = Buffer.alloc(DATA_OFFSET);
  PNG_SIGNATURE.copy(head, 0);
  writeChunk(head, IHDR_OFFSET, TYPE_IHDR, ihdrData(superblock.side));
  writeSuperblockChunk(head, SUPERBLOCK_CHUNK_OFFSET, superblock);
  writeChunk(head, ZLIB_CHUNK_OFFSET, TYPE_IDAT, ZLIB_HEADER);
  return head;
}

/** The whole imSB chunk (header, 64 data bytes, CRC) at `at`. */
export function writeSuperblockChunk(buf: Buffer, at: number, superblock: Superblock): void {
  writeChunkHeader(buf, at, TYPE_SUPERBLOCK, SUPERBLOCK_LENGTH);
  encodeSuperblock(superblock, buf, at + CHUNK_HEADER);
  sealChunk(buf, at, SUPERBLOCK_LENGTH);
}
