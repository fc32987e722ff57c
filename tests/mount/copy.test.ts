/**
 * Issue 4, "Must show" 1: through a real mount, a real tree (a few thousand small files, symlinks, a
 * hardlink, and two files of 100+ MB) copied in and out with cp -a, tar and rsync -a is
 * byte-identical; after umount the map passes pngcheck -v and fsck, and after a remount the tree is
 * still identical.
 */
import { join } from 'node:path';
import {
  fsck,
  makeTree,
  manifest,
  mkfs,
  mount,
  pngcheck,
  removeDir,
  requireBuild,
  sh,
  tempDir,
  umount,
  type Mount,
} from './helpers';

jest.setTimeout(600_000);

const SMALL_FILES = 2000;
const BIG_MIB = [120, 100];

let work: string;
let src: string;
let map: string;
let m: Mount | null = null;
let srcManifest: Record<string, string>;
let srcManifestNs: Record<string, string>;

beforeAll(async () => {
  requireBuild();
  work = tempDir('copy');
  src = join(work, 'src');
  map = join(work, 'map.png');
  await makeTree(src, SMALL_FILES, BIG_MIB);
  srcManifest = await manifest(src);
  srcManifestNs = await manifest(src, true);
  // Small on purpose: the copies make the map grow several times while they run.
  await mkfs(map, '64M');
  m = await mount(map);
});

afterAll(async () => {
  await umount(m);
  removeDir(m?.mountpoint);
  removeDir(work);
});

describe('copying a real tree through the mount', () => {
  it('cp -a in keeps content, modes, symlinks, hardlinks and ns mtimes', async () => {
    const mnt = m!.mountpoint;
    await sh(`cp -a ${src} ${mnt}/cp`);
    expect(await manifest(join(mnt, 'cp'), true)).toEqual(srcManifestNs);
    await sh(`cmp ${src}/big/big0.bin ${mnt}/cp/big/big0.bin`);
    const links = await sh(`stat -c '%i %h' ${mnt}/cp/hardlink-to-first $(find ${mnt}/cp -name 'f00000.*')`);
    const [a, b] = links.trim().split('\n');
    expect(a).toBe(b);
    expect(a!.split(' ')[1]).toBe('2');
  });

  it('tar c | tar x in, then rsync -a of that copy out', async () => {
    const mnt = m!.mountpoint;
    await sh(`mkdir ${mnt}/tar && tar -C ${src} -cf - . | tar -C ${mnt}/tar -xf -`);
    await sh(`rsync -a ${mnt}/tar/ ${work}/out-rsync/`);
    await sh(`diff -r --no-dereference ${src} ${work}/out-rsync`);
    // GNU tar's default format keeps whole-second mtimes.
    expect(await manifest(join(work, 'out-rsync'))).toEqual(srcManifest);
    await sh(`rm -rf ${work}/out-rsync`);
  });

  it('rsync -a in, then tar and cp -a out', async () => {
    const mnt = m!.mountpoint;
    await sh(`rsync -a ${src}/ ${mnt}/rsync/`);
    await sh(`mkdir ${work}/out-tar && tar -C ${mnt}/rsync -cf - . | tar -C ${work}/out-tar -xf -`);
    expect(await manifest(join(work, 'out-tar'))).toEqual(srcManifest);
    await sh(`rm -rf ${work}/out-tar`);
    await sh(`cp -a ${mnt}/cp ${work}/out-cp`);
    await sh(`diff -r --no-dereference ${src} ${work}/out-cp`);
    expect(await manifest(join(work, 'out-cp'), true)).toEqual(srcManifestNs);
    await sh(`rm -rf ${work}/out-cp`);
  });

  it('after umount the map is a valid PNG, fsck is clean, and a remount shows the same trees', async () => {
    const r = await umount(m);
    expect(r?.status).toBe(0);
    const png = await pngcheck(map);
    expect(png.stdout).toMatch(/No errors detected/);
    expect(png.status).toBe(0);
    const check = await fsck(map);
    expect(check.problems).toEqual([]);
    expect(check.clean).toBe(true);

    m = await mount(map, [], m!.mountpoint);
    const mnt = m.mountpoint;
    expect(await manifest(join(mnt, 'cp'), true)).toEqual(srcManifestNs);
    // The other two copies: their small files (the big ones were compared above, same bytes).
    await sh(`diff -r --no-dereference --exclude=big ${src} ${mnt}/tar`);
    await sh(`diff -r --no-dereference --exclude=big ${src} ${mnt}/rsync`);
  });
});
