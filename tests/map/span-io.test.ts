/**
 * Batched span I/O through the span-io addon: the synchronous batch (the scheduler's path for a lone
 * request) reads the same bytes as plain readSync calls, with the map's pages in the page cache and
 * with them dropped (then the batch announces its spans to the kernel first), and reports a file cut
 * short as IMAP_E_TRUNCATED, not as garbage. Read batches go through an io_uring where the kernel
 * allows one, and through pread with IMAPFS_IO_URING=0 (a child process: the choice is made once per
 * thread); both give the same bytes and the same errors. The addon's block sums match the
 * TypeScript reference.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { CLUSTER_SIZE, MapContainer } from '../../src/map';
import { blockSums } from '../../src/map/adler32';
import { MapLayout } from '../../src/map/layout';
import { fastBlockSums, fixBlocks, ioEngine } from '../../src/map/span-io';
import { ImapError } from '../../src/protocol/errors';
import { clusterPattern, withTempDir } from './helpers';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = withTempDir();
});
afterEach(() => tmp.cleanup());

const SIDE = 2048; // 4096 clusters, rows of 8 KiB: a 256-cluster plan is 512 spans

function makeMap(): { path: string; expected: Buffer } {
  const path = join(tmp.dir, 'm.png');
  const m = MapContainer.create(path, { side: SIDE });
  const count = 1000;
  const expected = Buffer.alloc(count * CLUSTER_SIZE);
  for (let c = 0; c < count; c++) clusterPattern(c, 3).copy(expected, c * CLUSTER_SIZE);
  m.writeClusters(0, expected);
  m.checkpoint();
  m.close();
  return { path, expected };
}

/** Drops clean page-cache pages (root only): the next read of the map goes to the device. */
function dropCaches(): boolean {
  const knob = '/proc/sys/vm/drop_caches';
  if (process.getuid?.() !== 0 || !existsSync(knob)) return false;
  writeFileSync(knob, '1');
  return true;
}

test('a batched read gives the bytes plain reads give, cached and cold', () => {
  const { path, expected } = makeMap();
  const m = MapContainer.open(path, { readOnly: true });
  const plain = Buffer.alloc(expected.length);
  m.readClusters(0, 1000, plain);
  expect(plain.equals(expected)).toBe(true);
  const batched = Buffer.alloc(expected.length);
  m.readClustersBatched(0, 1000, batched);
  expect(batched.equals(expected)).toBe(true);
  dropCaches(); // without root the cached case is all this test can check
  const cold = Buffer.alloc(expected.length);
  m.readClustersBatched(0, 1000, cold);
  expect(cold.equals(expected)).toBe(true);
  // An unaligned run in the middle, into a buffer offset.
  const part = Buffer.alloc(300 * CLUSTER_SIZE + 7);
  m.readClustersBatched(123, 300, part, 7);
  expect(part.subarray(7).equals(expected.subarray(123 * CLUSTER_SIZE, 423 * CLUSTER_SIZE))).toBe(true);
  m.close();
});

test('a map cut short fails the batch with IMAP_E_TRUNCATED', () => {
  const { path } = makeMap();
  const m = MapContainer.open(path, { readOnly: true });
  // Cut inside the rows of cluster 0's tile band: the batch meets end of file mid-plan.
  truncateSync(path, new MapLayout(SIDE).fileOffsetOfRaw(new MapLayout(SIDE).rawOffsetOfPixel(0, 20)));
  let err: unknown;
  try {
    m.readClustersBatched(0, 256, Buffer.alloc(256 * CLUSTER_SIZE));
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ImapError);
  expect((err as ImapError).code).toBe('IMAP_E_TRUNCATED');
  m.close();
});

test('read batches use an io_uring unless the kernel refused one, and say why', async () => {
  const { path, expected } = makeMap();
  const m = MapContainer.open(path, { readOnly: true });
  try {
    const got = Buffer.alloc(expected.length);
    await m.readClustersAsync(0, 1000, got);
    expect(got.equals(expected)).toBe(true);
    const engine = ioEngine();
    // Where io_uring is refused (old kernel, sysctl, seccomp), the errno that refused it is kept.
    if (engine.engine === 'pread') expect(engine.refusedErrno).toBeGreaterThan(0);
    else expect(engine.engine).toBe('io_uring');
    // A map cut inside the plan's rows: the ring's short reads end as IMAP_E_TRUNCATED, as pread's do.
    truncateSync(path, new MapLayout(SIDE).fileOffsetOfRaw(new MapLayout(SIDE).rawOffsetOfPixel(0, 20)));
    const cut = await m.readClustersAsync(0, 256, Buffer.alloc(256 * CLUSTER_SIZE)).catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(ImapError);
    expect((cut as ImapError).code).toBe('IMAP_E_TRUNCATED');
  } finally {
    m.close();
  }
});

test('with IMAPFS_IO_URING=0 the batches use pread: same bytes, same truncation error', () => {
  const { path, expected } = makeMap();
  const out = join(tmp.dir, 'child.json');
  const script = `
    const { MapContainer } = require(${JSON.stringify(join(__dirname, '../../src/map'))});
    const { ioEngine } = require(${JSON.stringify(join(__dirname, '../../src/map/span-io'))});
    const { readFileSync, writeFileSync, truncateSync } = require('node:fs');
    (async () => {
      const [path, out, cutAt] = process.argv.slice(1);
      const m = MapContainer.open(path, { readOnly: true });
      const a = Buffer.alloc(1000 * 4096), b = Buffer.alloc(1000 * 4096);
      m.readClustersBatched(0, 1000, a);
      await m.readClustersAsync(0, 1000, b);
      truncateSync(path, Number(cutAt));
      let code = null;
      try { await m.readClustersAsync(0, 256, Buffer.alloc(256 * 4096)); } catch (e) { code = e.code; }
      m.close();
      writeFileSync(out + '.bin', Buffer.concat([a, b]));
      writeFileSync(out, JSON.stringify({ engine: ioEngine(), code }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const layout = new MapLayout(SIDE);
  const cutAt = layout.fileOffsetOfRaw(layout.rawOffsetOfPixel(0, 20));
  const tsx = require.resolve('tsx/cjs', { paths: [join(__dirname, '../..')] });
  const r = spawnSync(process.execPath, ['--require', tsx, '-e', script, path, out, String(cutAt)], {
    env: { ...process.env, IMAPFS_IO_URING: '0' },
    encoding: 'utf8',
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const res = JSON.parse(readFileSync(out, 'utf8')) as {
    engine: { engine: string; refusedErrno: number };
    code: string;
  };
  expect(res.engine).toEqual({ engine: 'pread', refusedErrno: 0 });
  expect(res.code).toBe('IMAP_E_TRUNCATED');
  expect(readFileSync(out + '.bin').equals(Buffer.concat([expected, expected]))).toBe(true);
});

test('the native block sums equal the TypeScript reference on any range', () => {
  const buf = Buffer.alloc(70_000);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 2654435761) >>> 24;
  buf.fill(0xff, 10_000, 30_000); // long runs of the largest byte: the sums' overflow case
  const ref = new Uint32Array(2);
  const got = new Uint32Array(2);
  for (const [off, len] of [
    [0, 0],
    [0, 1],
    [3, 7],
    [5, 5552],
    [1, 5553],
    [0, 32_768],
    [9_999, 40_001],
    [0, 70_000],
  ] as const) {
    blockSums(buf, off, len, ref);
    fastBlockSums(buf, off, len, got);
    expect([off, len, ...got]).toEqual([off, len, ...ref]);
  }
  expect(() => fastBlockSums(buf, 69_999, 2, got)).toThrow(/outside the buffer/);
});

/** Bytes of `path` resident in the page cache (util-linux fincore). */
function residentBytes(path: string): number {
  const out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], {
    encoding: 'utf8',
  });
  return Number(out.trim());
}

test('advice brings the clusters into the page cache without reading them into memory of ours', async () => {
  const { path } = makeMap();
  const m = MapContainer.open(path, { readOnly: true });
  try {
    if (!dropCaches()) return; // not root: nothing to observe
    const before = residentBytes(path);
    expect(await m.adviseClusters(0, 1000)).toBe(0);
    // WILLNEED queues the reads; give the device a moment to finish them.
    let after = residentBytes(path);
    for (let i = 0; i < 50 && after - before < 1000 * CLUSTER_SIZE; i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = residentBytes(path);
    }
    expect(after - before).toBeGreaterThanOrEqual(1000 * CLUSTER_SIZE);
    expect(() => m.adviseClusters(4000, 200)).toThrow(ImapError);
  } finally {
    m.close();
  }
  expect(() => m.adviseClusters(0, 1)).toThrow(ImapError);
});

describe('fixBlocks (the checkpoint pass on pool threads)', () => {
  it('a block past the end of a cut-short map is IMAP_E_TRUNCATED; a closed fd is an ImapError', async () => {
    const { path } = makeMap();
    const layout = new MapLayout(SIDE);
    const last = layout.blockCount - 1;
    truncateSync(path, layout.blockChunkOffset(last) + 100);
    const fd = openSync(path, 'r+');
    const offsets = Float64Array.of(layout.blockChunkOffset(0), layout.blockChunkOffset(last));
    const lengths = Int32Array.of(layout.blockLength(0), layout.blockLength(last));
    const sums = new Uint32Array(4);
    const cut = await fixBlocks(fd, offsets, lengths, 2, sums, 'test blocks').catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(ImapError);
    expect((cut as ImapError).code).toBe('IMAP_E_TRUNCATED');
    closeSync(fd);
    const closed = await fixBlocks(fd, offsets, lengths, 1, sums, 'test blocks').catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(ImapError);
  });

  it('the sums it returns match the TypeScript reference', async () => {
    const { path } = makeMap();
    const layout = new MapLayout(SIDE);
    const fd = openSync(path, 'r+');
    const n = 6;
    const offsets = Float64Array.from({ length: n }, (_, i) => layout.blockChunkOffset(i));
    const lengths = Int32Array.from({ length: n }, (_, i) => layout.blockLength(i));
    const sums = new Uint32Array(2 * n);
    await fixBlocks(fd, offsets, lengths, n, sums, 'test blocks');
    for (let i = 0; i < n; i++) {
      const payload = Buffer.alloc(lengths[i]);
      readSync(fd, payload, 0, lengths[i], layout.fileOffsetOfRaw(layout.blockRawOffset(i)));
      const ref = new Uint32Array(2);
      blockSums(payload, 0, payload.length, ref);
      expect([sums[2 * i], sums[2 * i + 1]]).toEqual([ref[0], ref[1]]);
    }
    closeSync(fd);
  });
});
