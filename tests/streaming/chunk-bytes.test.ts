/**
 * Issue 7: io.chunk_bytes is the write-behind unit on the FUSE path. A file written through a mount
 * reaches the map in buffers of that size (fewer, larger flushes with a larger chunk), the bytes are
 * right either way, and a chunk that cannot hold a FUSE write or two of which exceed the dirty bound
 * is refused before mounting.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Mount,
  fsck,
  imapfs,
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

const MiB = 1024 * 1024;
let dir: string;
let m: Mount | null = null;

beforeAll(() => {
  requireBuild();
  dir = tempDir('chunk');
});
afterEach(async () => {
  await umount(m);
  m = null;
});
afterAll(() => removeDir(dir));

/** Writes 24 MiB of a known pattern with dd (1 MiB writes, one fsync at the end); returns the flushes. */
async function writeAndCount(map: string, chunk: string): Promise<{ flushes: number; chunkBytes: number }> {
  await mkfs(map, '64M');
  m = await mount(map, ['-o', `io.chunk_bytes=${chunk}`]);
  const src = join(dir, 'src.bin');
  const data = Buffer.alloc(24 * MiB);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i / 4, i);
  writeFileSync(src, data);
  await sh(`dd if=${src} of=${m.mountpoint}/f bs=1M conv=fsync status=none`);
  const s = (await stats(m.mountpoint)) as unknown as {
    writeBehind: { flushes: number; chunkBytes: number };
  };
  await sh(`echo 3 > /proc/sys/vm/drop_caches || true`);
  expect(readFileSync(join(m.mountpoint, 'f')).equals(data)).toBe(true);
  await umount(m);
  m = null;
  expect((await pngcheck(map)).status).toBe(0);
  expect((await fsck(map)).clean).toBe(true);
  return s.writeBehind;
}

test('a 4M chunk flushes a 24 MiB stream in a quarter of the 1M chunk’s flushes, same bytes', async () => {
  const small = await writeAndCount(join(dir, 'a.png'), '1M');
  const big = await writeAndCount(join(dir, 'b.png'), '4M');
  expect(small.chunkBytes).toBe(MiB);
  expect(big.chunkBytes).toBe(4 * MiB);
  expect(small.flushes).toBeGreaterThanOrEqual(24);
  expect(big.flushes).toBeLessThanOrEqual(8);
  expect(big.flushes).toBeGreaterThanOrEqual(6);
}, 240_000);

test.each([
  ['512K', 'io.chunk_bytes: must be at least fuse.max_write'],
  ['48M', 'io.chunk_bytes: must be at most half of io.max_dirty_bytes'],
  ['1000000', 'io.chunk_bytes: must be a multiple of 4K'],
])('io.chunk_bytes=%s is refused before mounting', async (chunk, message) => {
  const map = join(dir, `bad-${chunk}.png`);
  await mkfs(map, '16M');
  const mnt = tempDir('mnt');
  const r = await imapfs(['mount', map, mnt, '--json', '-o', `io.chunk_bytes=${chunk}`]);
  expect(r.status).not.toBe(0);
  expect(r.stdout + r.stderr).toContain('IMAP_E_CONFIG');
  expect(r.stdout + r.stderr).toContain(message);
});
