/**
 * Full scan of a map file: every chunk header and CRC, every stored-block header, the Adler-32, the
 * superblock and the metadata chunk. One pass serves both verify (report) and repair (rewrite what is
 * derivable: framing, CRCs, Adler-32; drop a metadata copy that is torn). Pixel data is never
 * changed: a CRC that disagrees with the pixels is rewritten to match them, because after a crash the
 * pixels are newer than the checksums (data integrity proper is the per-cluster CRCs of src/fs).
 */
import { fstatSync, ftruncateSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { type ErrorCode, ImapError, fromSystemError, isImapError } from '../protocol/errors';
import { StreamAdler, blockCoefficient, mod } from './adler32';
import { fastBlockSums } from './span-io';
import {
  ADLER_MOD,
  CHUNK_HEADER,
  CHUNK_OVERHEAD,
  IHDR_LENGTH,
  DATA_OFFSET,
  IHDR_OFFSET,
  type MapLayout,
  PNG_SIGNATURE,
  STORED_HEADER,
  SUPERBLOCK_CHUNK_OFFSET,
  ZLIB_CHUNK_OFFSET,
} from './layout';
import { decodeMetadata } from './metadata-chunk';
import {
  storedHeaderMatches,
  writeChunk,
  writeChunkHeader,
  writeStoredHeader,
  TYPE_IDAT,
  TYPE_IEND,
  TYPE_METADATA,
  TYPE_SUPERBLOCK,
} from './png-chunks';
import { buildHead, chunkType, readExactly } from './structure';
import { decodeSuperblock, type Superblock } from './superblock';

export interface ContainerProblem {
  code: ErrorCode;
  where: string;
}

export interface ContainerReport {
  ok: boolean;
  problems: ContainerProblem[];
}

export interface RepairReport {
  /** Chunks whose framing or CRC was rewritten (the Adler-32 chunk is counted in adlerFixed). */
  chunksFixed: number;
  adlerFixed: boolean;
  /** The metadata chunk was torn or undecodable and was removed (the sidecar holds the truth). */
  metadataDropped: boolean;
  /** 'intents': only the blocks of the regions the intent log marked were read; 'full': all. */
  scope: 'intents' | 'full';
  /** Data blocks read, of blockCount. */
  blocksScanned: number;
  blockCount: number;
}

/** Called with (bytes scanned, bytes to scan). */
export type ProgressFn = (done: number, total: number) => void;

export interface ScanOptions {
  repair: boolean;
  /** The superblock as the container knows it; the head is checked (and repaired) against it. */
  superblock: Superblock;
  /** Reused window for the sequential pass. */
  scratch: Buffer;
  /** Receives every data block's Adler partial sums, so the caller can cache them. */
  onBlockSums?: (block: number, s: number, w: number) => void;
  onProgress?: ProgressFn;
  /**
   * Read only these data blocks (sorted, unique); every other block is taken to be as `sums` says
   * (the intent log's table, updated here in place for the blocks read). Head and tail are checked.
   */
  only?: { blocks: Uint32Array; sums: Uint16Array };
}

export interface ScanResult extends Omit<RepairReport, 'scope' | 'blocksScanned' | 'blockCount'> {
  problems: ContainerProblem[];
  /** Adler-32 of the pixel stream as it is on disk now (null if the file is truncated). */
  adler: StreamAdler | null;
  metadataLength: number;
}

const MAX_PROBLEMS = 1000;
const IEND_CHUNK = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

export function scanContainer(fd: number, layout: MapLayout, opts: ScanOptions): ScanResult {
  const problems: ContainerProblem[] = [];
  let omitted = 0;
  const report = (code: ErrorCode, where: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push({ code, where });
    else omitted++;
  };
  const put = (buf: Buffer, off: number, len: number, pos: number): void => {
    try {
      writeSync(fd, buf, off, len, pos);
    } catch (err) {
      throw fromSystemError(err, `repairing map at ${pos}`);
    }
  };
  const result: ScanResult = {
    problems,
    chunksFixed: 0,
    adlerFixed: false,
    metadataDropped: false,
    adler: null,
    metadataLength: -1,
  };
  const size = fstatSync(fd).size;
  const only = opts.only;
  const total = only
    ? DATA_OFFSET +
      only.blocks.length * layout.blockStride +
      (layout.minimumFileSize - layout.adlerChunkOffset)
    : Math.max(size, layout.minimumFileSize);

  // Head: everything but imSB is derived from the superblock.
  const expected = buildHead(opts.superblock);
  const head = Buffer.alloc(DATA_OFFSET);
  if (size < DATA_OFFSET) {
    if (opts.repair) throw new ImapError('IMAP_E_TRUNCATED', `file of ${size} bytes`);
    report('IMAP_E_TRUNCATED', `file of ${size} bytes ends inside the PNG header`);
    return finish();
  }
  readExactly(fd, head, 0, DATA_OFFSET, 0, 'PNG header');
  const headParts: { name: string; start: number; end: number; dataStart: number; dataEnd: number }[] = [
    {
      name: 'IHDR',
      start: IHDR_OFFSET,
      end: SUPERBLOCK_CHUNK_OFFSET,
      dataStart: IHDR_OFFSET + CHUNK_HEADER,
      dataEnd: IHDR_OFFSET + CHUNK_HEADER + IHDR_LENGTH,
    },
    {
      name: 'zlib header IDAT',
      start: ZLIB_CHUNK_OFFSET,
      end: DATA_OFFSET,
      dataStart: ZLIB_CHUNK_OFFSET + CHUNK_HEADER,
      dataEnd: DATA_OFFSET - 4,
    },
  ];
  if (!head.subarray(0, 8).equals(PNG_SIGNATURE)) {
    report('IMAP_E_NOT_A_MAP', 'PNG signature');
    if (opts.repair) put(expected, 0, 8, 0);
  }
  for (const part of headParts) {
    const actual = head.subarray(part.start, part.end);
    if (actual.equals(expected.subarray(part.start, part.end))) continue;
    const framing = !head
      .subarray(part.start, part.start + CHUNK_HEADER)
      .equals(expected.subarray(part.start, part.start + CHUNK_HEADER));
    const data = !head
      .subarray(part.dataStart, part.dataEnd)
      .equals(expected.subarray(part.dataStart, part.dataEnd));
    if (framing || (data && part.name === 'IHDR'))
      report('IMAP_E_CORRUPT_HEADER', `${part.name} at ${part.start}`);
    else if (data) report('IMAP_E_CORRUPT_ZLIB', `zlib header at ${part.dataStart}`);
    else report('IMAP_E_CORRUPT_CHUNK', `${part.name} CRC at ${part.dataEnd}`);
    if (opts.repair) {
      put(expected, part.start, part.end - part.start, part.start);
      result.chunksFixed++;
    }
  }
  checkSuperblock(head, opts.superblock, report);

  // Data chunks, in windows of whole chunks.
  const win = opts.scratch;
  const perWindow = Math.max(1, Math.floor(win.length / layout.blockStride));
  const sums = new Uint32Array(2);
  let a = 1;
  let b = layout.rawLength % ADLER_MOD;
  let truncated = false;
  let scanned = DATA_OFFSET;
  for (const [b0, b1] of only ? blockRuns(only.blocks, perWindow) : allRuns(layout.blockCount, perWindow)) {
    const start = layout.blockChunkOffset(b0);
    const end = layout.blockChunkOffset(b1 - 1) + CHUNK_OVERHEAD + STORED_HEADER + layout.blockLength(b1 - 1);
    if (end > size) {
      truncated = true;
      break;
    }
    readExactly(fd, win, 0, end - start, start, 'data chunks');
    for (let blk = b0; blk < b1; blk++) {
      const c = layout.blockChunkOffset(blk) - start;
      const len = layout.blockLength(blk);
      const final = blk === layout.blockCount - 1;
      const where = `data chunk ${blk} at ${start + c}`;
      let rewrite = false;
      if (win.readUInt32BE(c) !== STORED_HEADER + len || chunkType(win, c) !== TYPE_IDAT) {
        report('IMAP_E_CORRUPT_HEADER', `${where}: length or type`);
        writeChunkHeader(win, c, TYPE_IDAT, STORED_HEADER + len);
        rewrite = true;
      }
      if (!storedHeaderMatches(win, c + CHUNK_HEADER, len, final)) {
        report('IMAP_E_CORRUPT_ZLIB', `${where}: stored block header`);
        writeStoredHeader(win, c + CHUNK_HEADER, len, final);
        rewrite = true;
      }
      const crcAt = c + CHUNK_HEADER + STORED_HEADER + len;
      const crc = crc32(win.subarray(c + 4, crcAt));
      if (crc !== win.readUInt32BE(crcAt)) {
        if (!rewrite) report('IMAP_E_CORRUPT_CHUNK', `${where}: CRC`);
        win.writeUInt32BE(crc, crcAt);
        rewrite = true;
      }
      if (rewrite && opts.repair) {
        put(win, c, CHUNK_HEADER + STORED_HEADER, start + c);
        put(win, crcAt, 4, start + crcAt);
        result.chunksFixed++;
      }
      fastBlockSums(win, c + CHUNK_HEADER + STORED_HEADER, len, sums);
      opts.onBlockSums?.(blk, sums[0], sums[1]);
      if (only) {
        only.sums[2 * blk] = sums[0];
        only.sums[2 * blk + 1] = sums[1];
        continue;
      }
      a += sums[0];
      b += blockCoefficient(layout.rawLength, layout.blockRawOffset(blk)) * sums[0] - sums[1];
      if (a >= 1 << 30 || b >= 2 ** 50 || b <= -(2 ** 50)) {
        a = mod(a);
        b = mod(b);
      }
    }
    scanned += end - start;
    opts.onProgress?.(only ? scanned : end, total);
  }
  if (truncated) {
    if (opts.repair)
      throw new ImapError('IMAP_E_TRUNCATED', `file of ${size} bytes ends inside the pixel data`);
    report('IMAP_E_TRUNCATED', `file of ${size} bytes ends inside the pixel data`);
    return finish();
  }
  const adler = only ? adlerOfTable(layout, only.sums) : new StreamAdler(mod(a), mod(b));
  result.adler = adler;

  // Adler-32 chunk.
  if (size < layout.tailOffset) {
    report('IMAP_E_TRUNCATED', `file of ${size} bytes ends inside the Adler-32 chunk`);
    return finish();
  }
  const adlerChunk = Buffer.alloc(CHUNK_OVERHEAD + 4);
  readExactly(fd, adlerChunk, 0, adlerChunk.length, layout.adlerChunkOffset, 'Adler-32 chunk');
  const adlerExpected = Buffer.alloc(CHUNK_OVERHEAD + 4);
  const adlerValue = Buffer.alloc(4);
  adlerValue.writeUInt32BE(adler.value, 0);
  writeChunk(adlerExpected, 0, TYPE_IDAT, adlerValue);
  if (!adlerChunk.equals(adlerExpected)) {
    const where = `Adler-32 chunk at ${layout.adlerChunkOffset}`;
    if (!adlerChunk.subarray(0, CHUNK_HEADER).equals(adlerExpected.subarray(0, CHUNK_HEADER))) {
      report('IMAP_E_CORRUPT_HEADER', `${where}: length or type`);
    }
    const valueDiffers = adlerChunk.readUInt32BE(CHUNK_HEADER) !== adler.value;
    if (valueDiffers) {
      report(
        'IMAP_E_CORRUPT_ZLIB',
        `${where}: stored 0x${adlerChunk.readUInt32BE(CHUNK_HEADER).toString(16)}, data gives 0x${adler.value.toString(16)}`,
      );
    }
    if (crc32(adlerChunk.subarray(4, 12)) !== adlerChunk.readUInt32BE(12))
      report('IMAP_E_CORRUPT_CHUNK', `${where}: CRC`);
    if (opts.repair) {
      put(adlerExpected, 0, adlerExpected.length, layout.adlerChunkOffset);
      if (valueDiffers) result.adlerFixed = true;
      else result.chunksFixed++;
    }
  }

  scanTail(fd, size, layout, opts.repair, report, result, put);
  opts.onProgress?.(total, total);
  return finish();

  function finish(): ScanResult {
    if (omitted > 0)
      problems.push({ code: problems[problems.length - 1].code, where: `… and ${omitted} more problems` });
    return result;
  }
}

/** [b0, b1) windows over every block. */
function allRuns(blockCount: number, perWindow: number): [number, number][] {
  const runs: [number, number][] = [];
  for (let b0 = 0; b0 < blockCount; b0 += perWindow) runs.push([b0, Math.min(blockCount, b0 + perWindow)]);
  return runs;
}

/** [b0, b1) windows over runs of consecutive blocks in a sorted list. */
function blockRuns(blocks: Uint32Array, perWindow: number): [number, number][] {
  const runs: [number, number][] = [];
  let i = 0;
  while (i < blocks.length) {
    let j = i + 1;
    while (j < blocks.length && blocks[j] === blocks[j - 1] + 1 && j - i < perWindow) j++;
    runs.push([blocks[i], blocks[j - 1] + 1]);
    i = j;
  }
  return runs;
}

/** Adler-32 of the stream from every block's (S, W): A = 1 + ΣS, B = R + Σ((R − o)·S − W). */
export function adlerOfTable(layout: MapLayout, table: Uint16Array): StreamAdler {
  const adler = StreamAdler.ofZeros(layout.rawLength);
  for (let blk = 0; blk < layout.blockCount; blk++) {
    const s = table[2 * blk];
    const w = table[2 * blk + 1];
    if (s !== 0 || w !== 0)
      adler.replace(blockCoefficient(layout.rawLength, layout.blockRawOffset(blk)), 0, 0, s, w);
  }
  return adler;
}

function checkSuperblock(
  head: Buffer,
  known: Superblock,
  report: (code: ErrorCode, where: string) => void,
): void {
  const at = SUPERBLOCK_CHUNK_OFFSET;
  const where = `imSB at ${at}`;
  const len = head.readUInt32BE(at);
  if (chunkType(head, at) !== TYPE_SUPERBLOCK || at + CHUNK_OVERHEAD + len > DATA_OFFSET) {
    report('IMAP_E_CORRUPT_SUPERBLOCK', `${where}: length or type`);
    return;
  }
  const dataEnd = at + CHUNK_HEADER + len;
  if (crc32(head.subarray(at + 4, dataEnd)) !== head.readUInt32BE(dataEnd)) {
    report('IMAP_E_CORRUPT_SUPERBLOCK', `${where}: CRC`);
    return;
  }
  try {
    const sb = decodeSuperblock(head.subarray(at + CHUNK_HEADER, dataEnd));
    if (sb.side !== known.side || sb.uuid !== known.uuid || sb.blockPayload !== known.blockPayload) {
      report('IMAP_E_CORRUPT_SUPERBLOCK', `${where}: geometry or uuid changed under the open map`);
    }
  } catch (err) {
    if (!isImapError(err)) throw err;
    report(err.code, `${where}: ${err.detail ?? err.message}`);
  }
}

function scanTail(
  fd: number,
  size: number,
  layout: MapLayout,
  repair: boolean,
  report: (code: ErrorCode, where: string) => void,
  result: ScanResult,
  put: (buf: Buffer, off: number, len: number, pos: number) => void,
): void {
  const at = layout.tailOffset;
  const dropMetadata = (): void => {
    put(IEND_CHUNK, 0, IEND_CHUNK.length, at);
    truncate(fd, at + IEND_CHUNK.length);
    result.metadataDropped = true;
    result.metadataLength = -1;
  };
  if (size < at + CHUNK_HEADER) {
    report('IMAP_E_TRUNCATED', `file of ${size} bytes ends before IEND`);
    if (repair) dropMetadata();
    return;
  }
  const hdr = Buffer.alloc(CHUNK_OVERHEAD);
  readExactly(fd, hdr, 0, CHUNK_HEADER, at, 'tail chunk');
  let iendAt = at;
  const type = chunkType(hdr, 0);
  if (type === TYPE_METADATA) {
    const len = hdr.readUInt32BE(0);
    if (at + CHUNK_OVERHEAD + len > size) {
      report('IMAP_E_TRUNCATED', `metadata chunk at ${at} runs past the end of the file`);
      if (repair) dropMetadata();
      return;
    }
    const chunk = Buffer.alloc(CHUNK_OVERHEAD + len);
    readExactly(fd, chunk, 0, chunk.length, at, 'metadata chunk');
    let ok = true;
    if (crc32(chunk.subarray(4, CHUNK_HEADER + len)) !== chunk.readUInt32BE(CHUNK_HEADER + len)) {
      report('IMAP_E_CORRUPT_METADATA', `metadata chunk at ${at}: CRC`);
      ok = false;
    } else {
      try {
        decodeMetadata(chunk.subarray(CHUNK_HEADER, CHUNK_HEADER + len));
      } catch (err) {
        if (!isImapError(err)) throw err;
        report('IMAP_E_CORRUPT_METADATA', `metadata chunk at ${at}: ${err.detail ?? err.message}`);
        ok = false;
      }
    }
    if (!ok) {
      if (repair) dropMetadata();
      return;
    }
    result.metadataLength = len;
    iendAt = at + CHUNK_OVERHEAD + len;
  } else if (type !== TYPE_IEND) {
    report('IMAP_E_CORRUPT_HEADER', `unexpected chunk type after the pixel data at ${at}`);
    if (repair) dropMetadata();
    return;
  }
  const iend = Buffer.alloc(CHUNK_OVERHEAD);
  const got = Math.min(CHUNK_OVERHEAD, size - iendAt);
  if (got > 0) readExactly(fd, iend, 0, got, iendAt, 'IEND');
  if (got < CHUNK_OVERHEAD) report('IMAP_E_TRUNCATED', `file of ${size} bytes ends inside IEND`);
  else if (!iend.equals(IEND_CHUNK)) report('IMAP_E_CORRUPT_HEADER', `IEND at ${iendAt}`);
  const end = iendAt + CHUNK_OVERHEAD;
  if (size > end) report('IMAP_E_CORRUPT_HEADER', `${size - end} bytes after IEND`);
  if (repair && (got < CHUNK_OVERHEAD || !iend.equals(IEND_CHUNK) || size !== end)) {
    put(IEND_CHUNK, 0, IEND_CHUNK.length, iendAt);
    truncate(fd, end);
    result.chunksFixed++;
  }
}

function truncate(fd: number, length: number): void {
  try {
    ftruncateSync(fd, length);
  } catch (err) {
    throw fromSystemError(err, 'truncating the map');
  }
}

export { IEND_CHUNK };
