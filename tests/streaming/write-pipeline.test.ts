/**
 * Issue 7: write-behind pipelines a file's flushes (the map write of one piece overlaps the commit of
 * the piece before and the prepare of the one after), except where two pieces share a cluster: then
 * the later one waits for the earlier one's commit, because it merges that cluster's live bytes.
 *
 * Through a real mount: a sequential stream (pieces overlap), and a stream of writes at unaligned
 * offsets that step back over the previous write (pieces share clusters and must apply in order).
 * The bytes read back equal a model of the same writes, before and after a remount; the map passes
 * pngcheck and fsck.
 */
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Mount,
  fsck,
  mkfs,
  mount,
  pngcheck,
  removeDir,
  requireBuild,
  sh,
  stats,
  tempDir,
  umount,
} from '../mount/helpers';
import { clusterPattern } from '../map/helpers';
import { CLUSTER_SIZE } from '../../src/fs/types';

const MiB = 1024 * 1024;
let dir: string;
let m: Mount | null = null;

interface WriteBehindStats {
  flushes: number;
  overlapped: number;
  serialized: number;
  backgroundErrors: number;
}

beforeAll(() => {
  requireBuild();
  dir = tempDir('pipeline');
});
afterEach(async () => {
  await umount(m);
  m = null;
});
afterAll(() => removeDir(dir));

/** Deterministic bytes (tests/map/helpers' cluster pattern), so a failure can be replayed. */
function pattern(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let c = 0; c * CLUSTER_SIZE < length; c++) clusterPattern(c, seed).copy(out, c * CLUSTER_SIZE);
  return out;
}

async function writeBehindStats(mountpoint: string): Promise<WriteBehindStats> {
  return ((await stats(mountpoint)) as unknown as { writeBehind: WriteBehindStats }).writeBehind;
}

async function expectSameAfterRemount(map: string, file: string, model: Buffer): Promise<void> {
  await sh(`echo 3 > /proc/sys/vm/drop_caches || true`);
  expect(readFileSync(join(m!.mountpoint, file)).equals(model)).toBe(true);
  await umount(m);
  m = await mount(map);
  expect(readFileSync(join(m.mountpoint, file)).equals(model)).toBe(true);
  await umount(m);
  m = null;
  expect((await pngcheck(map)).status).toBe(0);
  expect((await fsck(map)).clean).toBe(true);
}

test('a sequential 48 MiB stream is flushed with pieces in flight together, bytes intact', async () => {
  const map = join(dir, 'seq.png');
  await mkfs(map, '128M');
  m = await mount(map);
  const data = pattern(48 * MiB, 7);
  const fd = openSync(join(m.mountpoint, 'f'), 'w');
  for (let at = 0; at < data.length; at += MiB) writeSync(fd, data, at, MiB, at);
  fsyncSync(fd);
  closeSync(fd);
  const wb = await writeBehindStats(m.mountpoint);
  expect(wb.flushes).toBeGreaterThanOrEqual(48);
  expect(wb.overlapped).toBeGreaterThan(0);
  expect(wb.backgroundErrors).toBe(0);
  await expectSameAfterRemount(map, 'f', data);
}, 240_000);

test('writes that step back over unaligned offsets share clusters and apply in order', async () => {
  const map = join(dir, 'overlap.png');
  await mkfs(map, '64M');
  m = await mount(map);
  const model = Buffer.alloc(12 * MiB);
  const fd = openSync(join(m.mountpoint, 'g'), 'w');
  let end = 0;
  let seed = 11;
  let size = 0;
  // Each write starts up to 6000 bytes before the previous one ended (never at a cluster boundary
  // on purpose), so it detaches the open buffer mid-cluster and its head shares that cluster.
  for (let i = 0; end < model.length - 300_000; i++) {
    const back = 1 + ((i * 2654435761) % 6000);
    const at = Math.max(0, end - back);
    const length = 100_000 + ((i * 40503) % 200_000);
    const bytes = pattern(length, seed++);
    writeSync(fd, bytes, 0, length, at);
    bytes.copy(model, at);
    end = at + length;
    size = Math.max(size, end);
  }
  fsyncSync(fd);
  closeSync(fd);
  const wb = await writeBehindStats(m.mountpoint);
  expect(wb.serialized).toBeGreaterThan(0);
  expect(wb.backgroundErrors).toBe(0);
  await expectSameAfterRemount(map, 'g', model.subarray(0, size));
}, 240_000);
