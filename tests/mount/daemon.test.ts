/**
 * Issue 4, "Must show" 4 and the mount command's contract: `imapfs stats --json` (op counts, actor
 * states, cache hit ratio); a bad config fails before mounting with IMAP_E_CONFIG; a busy mountpoint
 * fails with IMAP_E_BUSY; the daemon's command line names the mountpoint; SIGTERM unmounts cleanly.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  fsck,
  imapfs,
  isMounted,
  mkfs,
  mount,
  pidAlive,
  pngcheck,
  py,
  removeDir,
  requireBuild,
  stats,
  tempDir,
  umount,
  waitFor,
  type Mount,
} from './helpers';

jest.setTimeout(180_000);

let work: string;
let map: string;
let m: Mount | null = null;

beforeAll(async () => {
  requireBuild();
  work = tempDir('daemon');
  map = join(work, 'map.png');
  await mkfs(map, '16M');
});

afterAll(async () => {
  await umount(m);
  removeDir(m?.mountpoint);
  removeDir(work);
});

describe('imapfs mount / stats / SIGTERM', () => {
  it('a bad config fails with IMAP_E_CONFIG before anything is mounted', async () => {
    const mnt = tempDir('mnt');
    try {
      const cfg = join(work, 'bad.yaml');
      await writeFile(cfg, 'cache:\n  l1_byts: 4M\n');
      const r = await imapfs(['mount', map, mnt, '--config', cfg]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/IMAP_E_CONFIG/);
      expect(r.stderr).toMatch(/l1_byts/);
      expect(isMounted(mnt)).toBe(false);
      const o = await imapfs(['mount', map, mnt, '-o', 'fuse.max_write=banana']);
      expect(o.status).not.toBe(0);
      expect(o.stderr).toMatch(/IMAP_E_CONFIG/);
      expect(isMounted(mnt)).toBe(false);
    } finally {
      removeDir(mnt);
    }
  });

  it('mounts, names the mountpoint in the daemon command line, and serves stats --json', async () => {
    m = await mount(map);
    const mnt = m.mountpoint;
    const cmdline = (await readFile(`/proc/${m.pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
    expect(cmdline).toContain(mnt);
    await py(
      `
import json, os, sys
m = sys.argv[1]
os.mkdir(os.path.join(m, 'd'))
for i in range(20):
    with open(os.path.join(m, 'd', 'f%d' % i), 'wb') as f: f.write(os.urandom(10000))
for i in range(20):
    open(os.path.join(m, 'd', 'f%d' % i), 'rb').read()
os.listdir(os.path.join(m, 'd'))
print('{}')
`,
      [mnt],
    );
    const s = await stats(mnt);
    expect(s.pid).toBe(m.pid);
    for (const op of ['create', 'write', 'read', 'lookup', 'mkdir', 'release']) {
      expect(s.ops[op]?.count).toBeGreaterThan(0);
    }
    expect(s.ops.create!.count).toBeGreaterThanOrEqual(20);
    expect(s.ops.mkdir!.count).toBe(1);
    for (const actor of ['journal', 'scheduler', 'cache', 'integrity', 'snapshot']) {
      expect(s.actors[actor]).toMatchObject({ state: 'ready', restarts: 0 });
    }
    const ratio = s.cache.hitRatio;
    expect(ratio === null || (typeof ratio === 'number' && ratio >= 0 && ratio <= 1)).toBe(true);
    const human = await imapfs(['stats', mnt]);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/journal\s+ready/);
  });

  it('refuses a busy mountpoint with IMAP_E_BUSY', async () => {
    const again = await imapfs(['mount', map, m!.mountpoint]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/IMAP_E_BUSY/);
    // Another map on the same (mounted) mountpoint: busy too, and the first mount still works.
    const other = join(work, 'other.png');
    await mkfs(other, '1M');
    const r = await imapfs(['mount', other, m!.mountpoint]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/IMAP_E_BUSY/);
    expect((await stats(m!.mountpoint)).actors.journal!.state).toBe('ready');
  });

  it('SIGTERM drains, checkpoints and unmounts: the map is a valid PNG and fsck is clean', async () => {
    const mnt = m!.mountpoint;
    await py(
      `
import os, sys
with open(os.path.join(sys.argv[1], 'last-words'), 'wb') as f: f.write(b'written just before SIGTERM' * 1000)
print('{}')
`,
      [mnt],
    );
    process.kill(m!.pid, 'SIGTERM');
    await waitFor('the daemon to exit', () => !pidAlive(m!.pid), 60_000);
    expect(isMounted(mnt)).toBe(false);
    const png = await pngcheck(map);
    expect(png.stdout).toMatch(/No errors detected/);
    const check = await fsck(map);
    expect(check.problems).toEqual([]);
    expect(check.clean).toBe(true);
    const log = await readFile(m!.log, 'utf8');
    expect(log).toMatch(/SIGTERM/);
    // No recovery needed at the next mount: the unmount was clean.
    m = await mount(map, [], mnt);
    const s = await stats(mnt);
    expect(s.recovery).toMatchObject({ recovered: null, sidecar: 'current' });
    const content = await readFile(join(mnt, 'last-words'));
    expect(content.equals(Buffer.from('written just before SIGTERM'.repeat(1000)))).toBe(true);
  });
});
