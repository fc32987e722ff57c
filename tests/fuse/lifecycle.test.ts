/**
 * Shutdown paths: SIGTERM unmounts cleanly; after SIGKILL the mountpoint is recoverable with
 * `fusermount3 -u`; `fusermount3 -u` from outside ends the daemon.
 */
import { promises as fsp } from 'node:fs';
import { isMounted, mountMemfs, run, type Mounted } from './helpers';

const mounts: Mounted[] = [];
afterAll(async () => {
  for (const m of mounts) await m.unmount();
});

const exitOf = (m: Mounted) =>
  new Promise<number | string | null>((r) => m.child.once('exit', (code, sig) => r(code ?? sig)));

test('SIGTERM unmounts and exits 0', async () => {
  const m = await mountMemfs('');
  mounts.push(m);
  await fsp.writeFile(`${m.mountpoint}/f`, 'x');
  const exited = exitOf(m);
  m.child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(isMounted(m.mountpoint)).toBe(false);
});

test('fusermount3 -u from outside ends the daemon cleanly', async () => {
  const m = await mountMemfs('');
  mounts.push(m);
  const exited = exitOf(m);
  await run('fusermount3', ['-u', m.mountpoint]);
  expect(await exited).toBe(0);
});

test('after SIGKILL the mount is dead (ENOTCONN) and fusermount3 -u recovers it', async () => {
  const m = await mountMemfs('');
  mounts.push(m);
  const exited = exitOf(m);
  m.child.kill('SIGKILL');
  await exited;
  expect(isMounted(m.mountpoint)).toBe(true);
  await expect(fsp.stat(`${m.mountpoint}/x`)).rejects.toMatchObject({ code: 'ENOTCONN' });
  await run('fusermount3', ['-u', m.mountpoint]);
  expect(isMounted(m.mountpoint)).toBe(false);
});
