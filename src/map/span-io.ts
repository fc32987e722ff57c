/**
 * Batched positional I/O through the imapfs_span_io addon (src/map/native/span_io.c): all spans of a
 * RunPlan in one libuv thread-pool job, or on the calling thread for a lone request. Loaded on first
 * use.
 */
import { findAddon, loadAddon } from '../native/addon';
import { ImapError, fromSystemError } from '../protocol/errors';

/** fd, write, buffer, fileOffsets, lengths, bufferOffsets, count (span_io.c). */
type SpanArgs = [
  fd: number,
  write: boolean,
  buffer: Uint8Array,
  fileOffsets: Float64Array,
  lengths: Int32Array,
  bufferOffsets: Int32Array,
  count: number,
];

interface SpanIoAddon {
  spanIo(...args: SpanArgs): Promise<void>;
  spanIoSync(...args: SpanArgs): void;
  blockSums(buffer: Uint8Array, offset: number, length: number, out: Uint32Array): void;
  spanAdvise(fd: number, fileOffsets: Float64Array, lengths: Int32Array, count: number): Promise<number>;
  ioEngine(): IoEngine;
  blockFix(
    fd: number,
    chunkOffsets: Float64Array,
    lengths: Int32Array,
    count: number,
    sums: Uint32Array,
  ): Promise<void>;
  tileCopy(
    store: Uint8Array,
    toStore: boolean,
    count: number,
    orientations: Int32Array,
    rowAt: Int32Array,
    rowRoom: Int32Array,
    gap: number,
    data: Uint8Array,
    dataOffset: number,
    lut: Uint16Array,
  ): void;
}

/**
 * How read batches reach the kernel: one io_uring submission per batch (uring.c), or one pread per
 * span where no ring could be set up (old kernel, io_uring disabled by sysctl or seccomp, or
 * IMAPFS_IO_URING=0); refusedErrno is the errno of the last refusal (0: none).
 */
export interface IoEngine {
  readonly engine: 'io_uring' | 'pread';
  readonly refusedErrno: number;
}

let addon: SpanIoAddon | undefined;

/** The engine read batches have used so far in this process (io_uring once any thread has a ring). */
export function ioEngine(): IoEngine {
  return spanIoAddon().ioEngine();
}

function spanIoAddon(): SpanIoAddon {
  addon ??= loadAddon(findAddon('imapfs_span_io.node', 'IMAPFS_SPAN_IO_BINDING')) as SpanIoAddon;
  return addon;
}

/** The spans of one batch: span i is `lengths[i]` bytes at file offset `fileOffsets[i]`, buffer offset `bufferOffsets[i]`. */
export interface SpanBatch {
  readonly buffer: Uint8Array;
  readonly fileOffsets: Float64Array;
  readonly lengths: Int32Array;
  readonly bufferOffsets: Int32Array;
  readonly count: number;
}

/**
 * runSpans on the calling thread, for a lone request: the spans of a read batch not in the page
 * cache, and the partial edge pages of a write batch, are announced to the kernel at once
 * (span_io.c), which a readSync or writeSync per span cannot do.
 */
export function runSpansSync(fd: number, batch: SpanBatch, what: string, write = false): void {
  if (batch.count === 0) return;
  try {
    spanIoAddon().spanIoSync(...addonArgs(fd, write, batch));
  } catch (err) {
    throw spanError(err, write, what);
  }
}

/**
 * Asks the kernel, from a pool thread, to start reading the spans into the page cache
 * (POSIX_FADV_WILLNEED); resolves to the spans it refused (a refusal only costs speed).
 */
export function adviseSpans(
  fd: number,
  fileOffsets: Float64Array,
  lengths: Int32Array,
  count: number,
): Promise<number> {
  if (count === 0) return Promise.resolve(0);
  return spanIoAddon().spanAdvise(fd, fileOffsets, lengths, count);
}

/**
 * adler32.ts's blockSums in C (span_io.c): the same (S, W) of buf[off, off+len) into out, 2-3x
 * faster. Used where every dirty or scanned block is summed (checkpoint, repair); the TypeScript
 * version stays the reference the tests compare against.
 */
export function fastBlockSums(buf: Uint8Array, off: number, len: number, out: Uint32Array): void {
  spanIoAddon().blockSums(buf, off, len, out);
}

/**
 * The checkpoint's pass over written blocks, on pool threads in parallel (block_fix.c): for each
 * block, the IDAT chunk at chunkOffsets[i] with lengths[i] payload bytes gets its CRC-32 rewritten,
 * and its payload's block sums land in sums[2i], sums[2i + 1] (as fastBlockSums computes them).
 */
export async function fixBlocks(
  fd: number,
  chunkOffsets: Float64Array,
  lengths: Int32Array,
  count: number,
  sums: Uint32Array,
  what: string,
): Promise<void> {
  if (count === 0) return;
  try {
    await spanIoAddon().blockFix(fd, chunkOffsets, lengths, count, sums);
  } catch (err) {
    throw spanError(err, true, what);
  }
}

/** Where the tile rows of a plan's clusters lie in its store (RunPlan); see tileCopy in span_io.c. */
export interface TileRows {
  readonly store: Uint8Array;
  readonly orientations: Int32Array;
  /** Per cluster k of the plan and tile row ty, at [32k + ty]: the store offset of the row's first byte. */
  readonly rowAt: Int32Array;
  /** Bytes of the row before the framing gap; 128 or more when the row is not split. */
  readonly rowRoom: Int32Array;
  readonly gap: number;
  readonly lut: Uint16Array;
}

/**
 * Permutes clusters between their curve order in `data` and their tile rows in the store (span_io.c):
 * toStore for a write's scatter, otherwise a read's gather.
 */
export function copyTiles(
  rows: TileRows,
  count: number,
  toStore: boolean,
  data: Uint8Array,
  dataOffset: number,
): void {
  spanIoAddon().tileCopy(
    rows.store,
    toStore,
    count,
    rows.orientations,
    rows.rowAt,
    rows.rowRoom,
    rows.gap,
    data,
    dataOffset,
    rows.lut,
  );
}

/** Reads or writes every span of the batch; a short read is IMAP_E_TRUNCATED, a failed syscall its errno's code. */
export async function runSpans(fd: number, write: boolean, batch: SpanBatch, what: string): Promise<void> {
  if (batch.count === 0) return;
  try {
    await spanIoAddon().spanIo(...addonArgs(fd, write, batch));
  } catch (err) {
    throw spanError(err, write, what);
  }
}

function addonArgs(fd: number, write: boolean, b: SpanBatch): SpanArgs {
  return [fd, write, b.buffer, b.fileOffsets, b.lengths, b.bufferOffsets, b.count];
}

function spanError(err: unknown, write: boolean, what: string): ImapError {
  // Not `instanceof Error`: the addon's errors come from the main realm, which a vm sandbox (jest) does not share.
  const e = err as { code?: unknown; message?: unknown } | null;
  if (typeof e === 'object' && e !== null && e.code === 'EOF') {
    return new ImapError('IMAP_E_TRUNCATED', `${String(e.message)} while reading ${what}`);
  }
  return fromSystemError(err, `${write ? 'writing' : 'reading'} ${what}`);
}
