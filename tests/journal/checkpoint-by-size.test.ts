/**
 * Issue 9: automatic checkpointing by journal size. With the time trigger out of the way (an hour),
 * writing more than journal.checkpoint_bytes starts a checkpoint on its own; below it, none runs.
 */
import { join } from 'node:path';
import {
  mkfs,
  mount,
  pngcheck,
  removeDir,
  requireBuild,
  sh,
  stats,
  tempDir,
  umount,
  waitFor,
  type Mount,
} from '../mount/helpers';

jest.setTimeout(300_000);

let work: string;
let m: Mount | null = null;

beforeAll(() => {
  requireBuild();
  work = tempDir('ckpt-size');
});

afterAll(async () => {
  await umount(m);
  removeDir(m?.mountpoint);
  removeDir(work);
});

test('writing past journal.checkpoint_bytes checkpoints without waiting for the interval', async () => {
  const map = join(work, 'map.png');
  await mkfs(map, '128M');
  m = await mount(map, ['-o', 'journal.checkpoint_bytes=8M', '-o', 'journal.checkpoint_interval_s=3600']);
  const mnt = m.mountpoint;
  // 2 MiB: under the threshold, no checkpoint.
  await sh(`dd if=/dev/urandom of=${mnt}/small bs=1M count=2 conv=fsync status=none`);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  let s = await stats(mnt);
  expect(s['sizeCheckpoints']).toBe(0);
  expect(s['checkpoints']).toBe(0);
  // 12 MiB more: over it.
  await sh(`dd if=/dev/urandom of=${mnt}/big bs=1M count=12 conv=fsync status=none`);
  await waitFor('a size-triggered checkpoint', async () => {
    s = await stats(mnt);
    return (s['sizeCheckpoints'] as number) >= 1 && (s['checkpoints'] as number) >= 1;
  });
  // Checkpointed while mounted: the PNG is complete even before unmount.
  expect((await pngcheck(map)).status).toBe(0);
  expect((await umount(m))?.status).toBe(0);
  m = null;
});
