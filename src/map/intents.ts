/**
 * The intent log, MAP.png.intents: what makes crash recovery proportional to what was written since
 * the last checkpoint instead of to the map. It holds two things:
 *
 *   - the Adler-32 block sums of every data block as of the last checkpoint (the "sums table"), so
 *     the stream's Adler-32 can be recomputed without reading blocks that did not change;
 *   - a bitmap of map regions (runs of REGION_CLUSTERS clusters, which the Hilbert curve lays out as
 *     aligned squares) that may have been written since then. A region's bit is durable before the
 *     first pixel of the region is written (pwrite + fdatasync), so after a crash every block whose
 *     CRC or sums may be stale lies in a marked region.
 *
 * Recovery rescans only the blocks of marked regions and takes every other block's sums from the
 * table. Any doubt (missing file, other map, other generation, bad CRC) means a full scan, which is
 * always correct; the file is then rebuilt. The PNG itself never depends on this file.
 *
 *   off len field (big endian)
 *     0   8 magic "imapfsIL"
 *     8   2 version (1)
 *    10   2 reserved, 0
 *    12   4 regionClusters
 *    16  16 map uuid
 *    32   4 side
 *    36   4 blockPayload
 *    40   8 generation: the superblock generation this table belongs to
 *    48   4 blockCount
 *    52   4 CRC-32 of the sums table
 *    56   4 reserved, 0
 *    60   4 CRC-32 of bytes 0..59
 *    64     bitmap, one bit per region (bit r&7 of byte r>>3)
 *    T      sums table at T = 64 + bitmap bytes rounded up to 4096: per block (S, W), u16 little endian
 *
 * Ordering: the table is rewritten at a checkpoint before the superblock turns clean with the new
 * generation; the bitmap is cleared in memory then, and on disk by the next epoch's first mark.
 */
import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { endianness } from 'node:os';
import { crc32 } from 'node:zlib';
import { ImapError, fromSystemError } from '../protocol/errors';
import { TILE_SIDE, placeTile } from './hilbert';
import type { MapLayout } from './layout';
import type { Superblock } from './superblock';
import { syncDir } from './file-sync';

export const INTENT_MAGIC = Buffer.from('imapfsIL', 'latin1');
export const INTENT_VERSION = 1;
/** 256 clusters = 1 MiB of data, a 16×16-tile square: one fdatasync per MiB of fresh writes at most. */
export const REGION_CLUSTERS = 256;
/** Regions marked beyond a sequential writer's current one (see markClusters): 8 MiB per fdatasync. */
export const MARK_AHEAD = 7;
const HEADER = 64;
const PAGE = 4096;

export function intentPathFor(mapPath: string): string {
  return `${mapPath}.intents`;
}

/** The table is a Uint16Array written as is: only little-endian hosts can share the file format. */
const HOST_LE = endianness() === 'LE';

export type IntentOpen =
  | { readonly log: IntentLog; readonly table: Uint16Array; readonly marked: number }
  | { readonly log: null; readonly reason: string };

export class IntentLog {
  private readonly bitmap: Uint8Array;
  /** The on-disk bitmap still holds the previous epoch's bits: the next mark rewrites it whole. */
  private diskStale = false;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly layout: MapLayout,
    private readonly uuid: string,
    bitmap: Uint8Array,
  ) {
    this.bitmap = bitmap;
  }

  static regionCount(layout: MapLayout): number {
    return Math.ceil(layout.clusterCount / REGION_CLUSTERS);
  }

  static tableOffset(layout: MapLayout): number {
    const bitmapBytes = Math.ceil(IntentLog.regionCount(layout) / 8);
    return Math.ceil((HEADER + bitmapBytes) / PAGE) * PAGE;
  }

  /**
   * Writes a fresh log for `layout` with every block's sums and no marks (tmp file, fsync, rename,
   * directory fsync), replacing any old one.
   */
  static create(mapPath: string, sb: Superblock, layout: MapLayout, table: Uint16Array): IntentLog | null {
    if (!HOST_LE) return null;
    const path = intentPathFor(mapPath);
    const tmp = `${path}.tmp`;
    const bitmap = new Uint8Array(Math.ceil(IntentLog.regionCount(layout) / 8));
    const header = encodeHeader(sb.uuid, layout, sb.generation, tableCrc(table));
    let fd = -1;
    try {
      fd = openSync(tmp, 'w+');
      writeAll(fd, header, 0);
      writeAll(fd, Buffer.from(bitmap.buffer, bitmap.byteOffset, bitmap.byteLength), HEADER);
      writeAll(fd, tableBytes(table, 0, layout.blockCount), IntentLog.tableOffset(layout));
      fdatasyncSync(fd);
      renameSync(tmp, path);
      syncDir(path);
      closeSync(fd);
      // Reopened by its final name, so that tools watching writes by path (the power-cut model) see
      // later writes under the name recovery reads.
      fd = -1;
      fd = openSync(path, 'r+');
    } catch (err) {
      if (fd >= 0) closeSync(fd);
      tryUnlink(tmp);
      throw fromSystemError(err, `writing ${path}`);
    }
    return new IntentLog(path, fd, layout, sb.uuid, bitmap);
  }

  /**
   * Opens the log of a map opened for writing. Usable only if it belongs to this map (uuid, geometry)
   * at this generation and both CRCs hold; otherwise it is removed, so that no later checkpoint can
   * make a stale file look current, and the reason is returned.
   */
  static open(mapPath: string, sb: Superblock, layout: MapLayout): IntentOpen {
    const path = intentPathFor(mapPath);
    if (!HOST_LE) return { log: null, reason: 'big-endian host' };
    let fd: number;
    try {
      fd = openSync(path, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { log: null, reason: 'no intent log' };
      throw fromSystemError(err, `opening ${path}`);
    }
    const reject = (reason: string): IntentOpen => {
      closeSync(fd);
      tryUnlink(path);
      return { log: null, reason };
    };
    const tableAt = IntentLog.tableOffset(layout);
    const tableLength = 4 * layout.blockCount;
    if (fstatSync(fd).size < tableAt + tableLength) return reject('intent log is truncated');
    const head = Buffer.alloc(tableAt);
    readAll(fd, head, 0, path);
    if (!head.subarray(0, 8).equals(INTENT_MAGIC)) return reject('intent log has no magic');
    if (crc32(head.subarray(0, 60)) !== head.readUInt32BE(60)) return reject('intent log header CRC');
    if (head.readUInt16BE(8) !== INTENT_VERSION) return reject(`intent log version ${head.readUInt16BE(8)}`);
    if (head.readUInt32BE(12) !== REGION_CLUSTERS) return reject('intent log region size differs');
    if (head.toString('hex', 16, 32) !== sb.uuid.replace(/-/g, ''))
      return reject('intent log of another map');
    if (
      head.readUInt32BE(32) !== layout.side ||
      head.readUInt32BE(36) !== layout.blockPayload ||
      head.readUInt32BE(48) !== layout.blockCount
    ) {
      return reject('intent log geometry differs from the map');
    }
    const generation = head.readBigUInt64BE(40);
    if (generation !== sb.generation) {
      return reject(`intent log generation ${generation}, map generation ${sb.generation}`);
    }
    const raw = Buffer.alloc(tableLength);
    readAll(fd, raw, tableAt, path);
    if (crc32(raw) !== head.readUInt32BE(52)) return reject('intent log sums table CRC');
    const table = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
    const bitmap = Uint8Array.from(
      head.subarray(HEADER, HEADER + Math.ceil(IntentLog.regionCount(layout) / 8)),
    );
    const log = new IntentLog(path, fd, layout, sb.uuid, bitmap);
    // A clean map's marks belong to an epoch its last checkpoint closed: start the next one empty.
    if (sb.state === 'clean') log.startEpoch();
    let marked = 0;
    for (const byte of bitmap) marked += popcount(byte);
    return { log, table, marked };
  }

  /**
   * Makes the regions of clusters [first, first+count) durably marked. Called before their pixels
   * are written; costs one small write and an fdatasync when a region is new to this epoch.
   */
  markClusters(first: number, count: number): void {
    this.assertOpen();
    if (count <= 0) return;
    const r0 = Math.floor(first / REGION_CLUSTERS);
    let r1 = Math.floor((first + count - 1) / REGION_CLUSTERS);
    // A stream entering a new region right after the one before it will enter the next ones too:
    // marking them with this fdatasync saves one per MiB of a sequential write, at the price of at
    // most MARK_AHEAD unwritten regions to rescan after a crash. Random writes do not trigger it.
    if (!this.isMarked(r1) && r1 > 0 && this.isMarked(r1 - 1)) {
      r1 = Math.min(r1 + MARK_AHEAD, IntentLog.regionCount(this.layout) - 1);
    }
    let lo = -1;
    let hi = -1;
    for (let r = r0; r <= r1; r++) {
      const byte = r >> 3;
      const bit = 1 << (r & 7);
      if ((this.bitmap[byte] & bit) !== 0) continue;
      this.bitmap[byte] |= bit;
      if (lo < 0) lo = byte;
      hi = byte;
    }
    if (lo < 0 && !this.diskStale) return;
    if (this.diskStale) {
      lo = 0;
      hi = this.bitmap.length - 1;
    }
    const bytes = Buffer.from(this.bitmap.buffer, this.bitmap.byteOffset + lo, hi - lo + 1);
    try {
      writeAll(this.fd, bytes, HEADER + lo);
      fdatasyncSync(this.fd);
    } catch (err) {
      throw fromSystemError(err, `marking regions in ${this.path}`);
    }
    this.diskStale = false;
  }

  private isMarked(region: number): boolean {
    return (this.bitmap[region >> 3]! & (1 << (region & 7))) !== 0;
  }

  /** Marked regions (loaded at open or marked since), for recovery. */
  markedRegions(): number[] {
    const out: number[] = [];
    const n = IntentLog.regionCount(this.layout);
    for (let r = 0; r < n; r++) if ((this.bitmap[r >> 3] & (1 << (r & 7))) !== 0) out.push(r);
    return out;
  }

  /**
   * The blocks holding any pixel of the marked regions, sorted: the only blocks a crash may have
   * left with a stale CRC or sums.
   */
  blocksToRescan(): Uint32Array {
    return regionBlocks(this.layout, this.markedRegions());
  }

  /**
   * At a checkpoint, before the superblock records `generation`: table entries [lo, hi) (the blocks
   * that changed) and the header are written and made durable; the epoch's marks are dropped.
   */
  commit(table: Uint16Array, generation: bigint, lo: number, hi: number): void {
    this.assertOpen();
    try {
      if (hi > lo) writeAll(this.fd, tableBytes(table, lo, hi), IntentLog.tableOffset(this.layout) + 4 * lo);
      writeAll(this.fd, encodeHeader(this.uuid, this.layout, generation, tableCrc(table)), 0);
      fdatasyncSync(this.fd);
    } catch (err) {
      throw fromSystemError(err, `writing ${this.path}`);
    }
    this.startEpoch();
  }

  /** Drops the marks in memory; the disk keeps them (harmless extra work) until the next mark. */
  private startEpoch(): void {
    this.bitmap.fill(0);
    this.diskStale = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      closeSync(this.fd);
    } catch (err) {
      throw fromSystemError(err, `closing ${this.path}`);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new ImapError('IMAP_E_INTERNAL', `intent log ${this.path} is closed`);
  }
}

/** Sorted block numbers covering every pixel row of every cluster in `regions`. */
export function regionBlocks(layout: MapLayout, regions: readonly number[]): Uint32Array {
  const seen = new Uint8Array(layout.blockCount);
  const place = new Int32Array(3);
  const P = layout.blockPayload;
  for (const r of regions) {
    const end = Math.min(layout.clusterCount, (r + 1) * REGION_CLUSTERS);
    for (let c = r * REGION_CLUSTERS; c < end; c++) {
      placeTile(layout.order, c, place);
      const x0 = place[0];
      const y0 = place[1];
      for (let row = 0; row < TILE_SIDE; row++) {
        const raw = layout.rawOffsetOfPixel(x0, y0 + row);
        const b0 = Math.floor(raw / P);
        const b1 = Math.floor((raw + 4 * TILE_SIDE - 1) / P);
        seen[b0] = 1;
        seen[b1] = 1;
      }
    }
  }
  let n = 0;
  for (const s of seen) n += s;
  const out = new Uint32Array(n);
  let k = 0;
  for (let b = 0; b < seen.length; b++) if (seen[b] !== 0) out[k++] = b;
  return out;
}

function encodeHeader(uuid: string, layout: MapLayout, generation: bigint, tableCrcValue: number): Buffer {
  const h = Buffer.alloc(HEADER);
  INTENT_MAGIC.copy(h, 0);
  h.writeUInt16BE(INTENT_VERSION, 8);
  h.writeUInt32BE(REGION_CLUSTERS, 12);
  Buffer.from(uuid.replace(/-/g, ''), 'hex').copy(h, 16);
  h.writeUInt32BE(layout.side, 32);
  h.writeUInt32BE(layout.blockPayload, 36);
  h.writeBigUInt64BE(generation, 40);
  h.writeUInt32BE(layout.blockCount, 48);
  h.writeUInt32BE(tableCrcValue, 52);
  h.writeUInt32BE(crc32(h.subarray(0, 60)), 60);
  return h;
}

function tableBytes(table: Uint16Array, lo: number, hi: number): Buffer {
  return Buffer.from(table.buffer, table.byteOffset + 4 * lo, 4 * (hi - lo));
}

function tableCrc(table: Uint16Array): number {
  return crc32(Buffer.from(table.buffer, table.byteOffset, table.byteLength));
}

function popcount(byte: number): number {
  let n = 0;
  for (let v = byte; v !== 0; v &= v - 1) n++;
  return n;
}

function writeAll(fd: number, buf: Buffer, pos: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, pos + done);
}

function readAll(fd: number, buf: Buffer, pos: number, path: string): void {
  let done = 0;
  while (done < buf.length) {
    let n: number;
    try {
      n = readSync(fd, buf, done, buf.length - done, pos + done);
    } catch (err) {
      throw fromSystemError(err, `reading ${path}`);
    }
    if (n === 0) throw new ImapError('IMAP_E_TRUNCATED', `${path} ends at ${pos + done}`);
    done += n;
  }
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    // A leftover tmp or stale log is harmless (it fails validation); only report unexpected errors.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw fromSystemError(err, `removing ${path}`);
    }
  }
}
