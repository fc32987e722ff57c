/**
 * Issue 7: the mount raises the kernel's read-ahead to fuse.max_write, so a sequential reader's
 * pages reach the daemon as requests of that size rather than the kernel's default 128 KiB. The
 * kernel lowers the read-ahead while it processes the INIT reply, so the value must be written
 * after that and must still be in force when reads happen.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Mount,
  mkfs,
  mount,
  removeDir,
  requireBuild,
  sh,
  stats,
  tempDir,
  umount,
} from '../mount/helpers';
import { mountDevice } from '../../src/daemon/readahead';

const MiB = 1024 * 1024;
let dir: string;
let m: Mount | null = null;

beforeAll(() => {
  requireBuild();
  dir = tempDir('readahead');
});
afterEach(async () => {
  await umount(m);
  m = null;
});
afterAll(() => removeDir(dir));

function readAheadKiB(mountpoint: string): number {
  const dev = mountDevice(mountpoint);
  if (!dev) throw new Error(`${mountpoint} is not mounted`);
  return Number(readFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, 'utf8').trim());
}

test.each([
  ['1M', 1024],
  ['256K', 256],
])(
  'with fuse.max_write=%s a cold sequential read arrives in %i KiB requests',
  async (maxWrite, kib) => {
    const map = join(dir, `m-${maxWrite}.png`);
    await mkfs(map, '64M');
    m = await mount(map, ['-o', `fuse.max_write=${maxWrite}`]);
    const data = Buffer.alloc(16 * MiB);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    writeFileSync(join(m.mountpoint, 'f'), data);
    await sh(`sync ${m.mountpoint}/f && echo 3 > /proc/sys/vm/drop_caches`);
    expect(readAheadKiB(m.mountpoint)).toBe(kib);
    const before = (await stats(m.mountpoint)) as unknown as { ops: { read?: { count: number } } };
    await sh(`dd if=${m.mountpoint}/f of=/dev/null bs=1M status=none`);
    const after = (await stats(m.mountpoint)) as unknown as { ops: { read?: { count: number } } };
    const reads = (after.ops.read?.count ?? 0) - (before.ops.read?.count ?? 0);
    // 16 MiB in kib-sized requests, plus a few smaller ones while the kernel's window ramps up.
    const ideal = (16 * 1024) / kib;
    expect(reads).toBeGreaterThanOrEqual(ideal);
    expect(reads).toBeLessThanOrEqual(ideal + 8);
    expect(readFileSync(join(m.mountpoint, 'f')).equals(data)).toBe(true);
  },
  120_000,
);
