/**
 * Issue 4, "Must show" 3: crash and restart on the real daemon.
 *   (a) the journal or the scheduler is crashed by its fault hook (`imapfs debug fault`) while a copy
 *       of a ~100 MB tree runs, before a request is handled or after it was applied and before its
 *       reply: the copy completes byte-identical and stats counts the restart;
 *   (b) the whole daemon is SIGKILLed after fsync'd and un-fsync'd writes: `imapfs umount` releases
 *       the dead mount, a remount recovers, everything fsync'd is intact, fsck is clean, pngcheck passes.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  fsck,
  imapfs,
  isMounted,
  makeTree,
  manifest,
  mkfs,
  mount,
  pidAlive,
  pngcheck,
  py,
  removeDir,
  requireBuild,
  run,
  stats,
  tempDir,
  umount,
  waitFor,
  type Mount,
} from './helpers';

jest.setTimeout(300_000);

let work: string;
let src: string;
let srcManifest: Record<string, string>;

beforeAll(async () => {
  requireBuild();
  work = tempDir('crash');
  src = join(work, 'src');
  await makeTree(src, 300, [100]);
  srcManifest = await manifest(src, true);
});

afterAll(() => removeDir(work));

describe('actor crashes while a copy runs', () => {
  let m: Mount | null = null;
  let map: string;
  afterAll(async () => {
    await umount(m);
    removeDir(m?.mountpoint);
  });

  // crash: the worker dies as the message arrives; crash-after: once the op is applied, before its
  // reply leaves (the request is delivered again and must not be applied twice).
  it.each([
    ['journal', 'crash'],
    ['scheduler', 'crash'],
    ['journal', 'crash-after'],
    ['scheduler', 'crash-after'],
  ])('%s %s: the copy completes byte-identical and stats shows the restart', async (actor, mode) => {
    if (!m) {
      map = join(work, 'crash.png');
      await mkfs(map, '512M');
      m = await mount(map);
    }
    const mnt = m.mountpoint;
    const dest = join(mnt, `copy-${actor}-${mode}`);
    const before = (await stats(mnt)).actors[actor]!.restarts;
    const copy = run('cp', ['-a', src, dest], { timeoutMs: 240_000 });
    // Arm the fault once the big file is being written, so the crash hits requests in flight.
    await waitFor(
      'the copy to reach the big file',
      async () => ((await stat(join(dest, 'big', 'big0.bin')).catch(() => null))?.size ?? 0) > 8 << 20,
      120_000,
    );
    const armed = await imapfs(['debug', 'fault', mnt, actor, mode, '--count', '1']);
    expect(armed.stderr).toBe('');
    expect(armed.status).toBe(0);
    const done = await copy;
    expect(done.stderr).toBe('');
    expect(done.status).toBe(0);
    // If the copy's last message went out before the fault was armed, reading it back triggers it.
    expect(await manifest(dest, true)).toEqual(srcManifest);
    await waitFor('the restart', async () => (await stats(mnt)).actors[actor]!.restarts > before, 60_000);
    const s = await stats(mnt);
    expect(s.actors[actor]!.restarts).toBeGreaterThanOrEqual(1);
    expect(s.actors[actor]!.state).toBe('ready');
    expect(s.writeBehind).toMatchObject({ backgroundErrors: 0 });
  });

  it('after the crashes, umount leaves a valid PNG and fsck is clean', async () => {
    const r = await umount(m);
    m = null;
    expect(r?.status).toBe(0);
    expect((await pngcheck(map)).status).toBe(0);
    const check = await fsck(map);
    expect(check.problems).toEqual([]);
    expect(check.clean).toBe(true);
  });
});

describe('SIGKILL of the daemon', () => {
  let m: Mount | null = null;
  afterAll(async () => {
    await umount(m);
    removeDir(m?.mountpoint);
  });

  it('keeps everything fsync’d; umount releases the dead mount; remount recovers; fsck clean', async () => {
    const map = join(work, 'kill.png');
    await mkfs(map, '64M');
    m = await mount(map);
    const mnt = m.mountpoint;
    const written = await py<{ synced: Record<string, string> }>(
      `
import hashlib, json, os, random, sys
m = sys.argv[1]
rng = random.Random(7)
synced = {}
os.mkdir(os.path.join(m, 'synced'))
for i in range(40):
    data = rng.randbytes(rng.choice([0, 1, 4096, 5000, 70000, 1 << 20, 3 << 20]))
    p = os.path.join(m, 'synced', 'f%02d' % i)
    fd = os.open(p, os.O_CREAT | os.O_WRONLY)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    synced['synced/f%02d' % i] = hashlib.sha256(data).hexdigest()
# An fsync'd file rewritten in place, fsync'd again: the second version must survive.
p = os.path.join(m, 'synced', 'f00')
data = rng.randbytes(200000)
fd = os.open(p, os.O_WRONLY | os.O_TRUNC); os.write(fd, data); os.fsync(fd); os.close(fd)
synced['synced/f00'] = hashlib.sha256(data).hexdigest()
dfd = os.open(os.path.join(m, 'synced'), os.O_RDONLY); os.fsync(dfd); os.close(dfd)
# Not fsync'd: may or may not survive, but must not damage the rest.
os.mkdir(os.path.join(m, 'unsynced'))
for i in range(20):
    with open(os.path.join(m, 'unsynced', 'u%02d' % i), 'wb') as f:
        f.write(rng.randbytes(300000))
fd = os.open(os.path.join(m, 'synced', 'f01'), os.O_WRONLY | os.O_APPEND); os.write(fd, b'x' * 100000)
print(json.dumps({'synced': synced}))
`,
      [mnt],
    );
    process.kill(m.pid, 'SIGKILL');
    await waitFor('the daemon to die', () => !pidAlive(m!.pid), 30_000);
    expect(isMounted(mnt)).toBe(true);

    const released = await imapfs(['umount', mnt, '--json']);
    expect(released.stderr).toBe('');
    expect(JSON.parse(released.stdout)).toMatchObject({ ok: true, how: 'released-dead-mount' });
    expect(isMounted(mnt)).toBe(false);

    m = await mount(map, [], mnt);
    const after = await py<Record<string, string | null>>(
      `
import hashlib, json, os, sys
m, names = sys.argv[1], json.loads(sys.argv[2])
out = {}
for n in names:
    try:
        out[n] = hashlib.sha256(open(os.path.join(m, n), 'rb').read()).hexdigest()
    except OSError as e:
        out[n] = None
print(json.dumps(out))
`,
      [mnt, JSON.stringify(Object.keys(written.synced).filter((n) => n !== 'synced/f01'))],
    );
    const expected = { ...written.synced };
    delete expected['synced/f01'];
    expect(after).toEqual(expected);
    // f01 is its fsync'd content, possibly followed by the un-fsync'd append; never shorter.
    const f01 = await stat(join(mnt, 'synced', 'f01'));
    expect(f01.size).toBeGreaterThan(0);
    const s = await stats(mnt);
    expect(s.recovery).toBeTruthy();

    const r = await umount(m);
    m = null;
    expect(r?.status).toBe(0);
    expect((await pngcheck(map)).status).toBe(0);
    const check = await fsck(map);
    expect(check.problems).toEqual([]);
    expect(check.clean).toBe(true);
    // The dead daemon's control socket does not confuse a later command.
    const gone = await run(process.execPath, [join(__dirname, '..', '..', 'bin', 'imapfs'), 'stats', mnt]);
    expect(gone.status).not.toBe(0);
    expect(gone.stderr).toMatch(/IMAP_E_NOT_MOUNTED/);
  });
});
