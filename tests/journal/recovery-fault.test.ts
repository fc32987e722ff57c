/**
 * Issue 9: a fault injected into the journal actor during recovery (a crash or a hang) ends in a
 * consistent mount or in a clear error that names what to do, never in a mount serving wrong data.
 *
 * Recovery runs in the journal actor (JournalOps.recover) before any other actor starts. Each case
 * starts from a dirty map: files written and fsync'd on a real mount, the daemon SIGKILLed before any
 * checkpoint. The fault is armed from the journal's first worker with `imapfs mount --fault` (the
 * words of `imapfs debug fault`), whose `count` is shared by the respawned workers:
 *   - fires once: the supervisor restarts the journal, recovery is delivered again and completes;
 *     every fsync'd file reads back exactly, stats shows the restart, fsck and pngcheck pass;
 *   - fires every time: `imapfs mount` fails with IMAP_E_RECOVERY_FAILED and the command to run,
 *     nothing is mounted, the map lock is gone, and a plain mount afterwards recovers everything.
 * Both for `crash` (the worker dies) and `hang` (the worker blocks; the heartbeat, here with
 * journal.hang_timeout_s=2, catches it).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
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
  run,
  stats,
  tempDir,
  umount,
  waitFor,
  type Mount,
} from '../mount/helpers';

jest.setTimeout(300_000);

interface RecoveryStats {
  recovered: unknown;
  attempt: number;
  ms: number;
}

interface CrashedMap {
  map: string;
  mountpoint: string;
  /** relative path → SHA-256 of what was fsync'd */
  synced: Record<string, string>;
  /** The superblock's generation after the crash (the last checkpoint's). */
  generation: number;
}

let work: string;
const mounts: Mount[] = [];

beforeAll(() => {
  requireBuild();
  work = tempDir('recovery-fault');
});

afterAll(async () => {
  for (const m of mounts) await umount(m);
  for (const m of mounts) removeDir(m.mountpoint);
  removeDir(work);
});

const WRITE_PY = `
import hashlib, json, os, random, sys
m = sys.argv[1]
rng = random.Random(int(sys.argv[2]))
synced = {}
os.mkdir(os.path.join(m, 'd'))
for i in range(24):
    data = rng.randbytes(rng.choice([0, 1, 4095, 4097, 70000, 300000, 1 << 20, (2 << 20) + 3]))
    name = 'd/f%02d' % i
    fd = os.open(os.path.join(m, name), os.O_CREAT | os.O_WRONLY)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    synced[name] = hashlib.sha256(data).hexdigest()
# Overwritten in place and fsync'd again: the second version must be what recovery keeps.
data = rng.randbytes(150000)
fd = os.open(os.path.join(m, 'd/f03'), os.O_WRONLY | os.O_TRUNC); os.write(fd, data); os.fsync(fd); os.close(fd)
synced['d/f03'] = hashlib.sha256(data).hexdigest()
dfd = os.open(os.path.join(m, 'd'), os.O_RDONLY); os.fsync(dfd); os.close(dfd)
print(json.dumps(synced))
`;

const HASH_PY = `
import hashlib, json, os, sys
m, names = sys.argv[1], json.loads(sys.argv[2])
out = {}
for n in names:
    try:
        out[n] = hashlib.sha256(open(os.path.join(m, n), 'rb').read()).hexdigest()
    except OSError as e:
        out[n] = 'error: %s' % e
out['#entries'] = sorted(os.listdir(os.path.join(m, 'd')))
print(json.dumps(out))
`;

/**
 * The superblock's state and generation, read through the compiled container code without opening
 * (and so repairing) the map. Recovery ends with a checkpoint: the generation goes up by one.
 */
async function superblock(map: string): Promise<{ state: string; generation: number }> {
  const script = `const { MapContainer } = require(${JSON.stringify(join(ROOT, 'dist', 'map'))});
const c = MapContainer.open(process.argv[1], { readOnly: true });
process.stdout.write(JSON.stringify({ state: c.superblock.state, generation: Number(c.superblock.generation) }));
c.close();`;
  const r = await run(process.execPath, ['-e', script, map]);
  if (r.status !== 0) throw new Error(`reading the superblock failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { state: string; generation: number };
}

/** A hang is caught by the journal's heartbeat timeout: 2 s instead of 30 keeps the test short. */
function hangTimeout(mode: 'crash' | 'hang'): string[] {
  return mode === 'hang' ? ['-o', 'journal.hang_timeout_s=2'] : [];
}

/** The daemon log (MAP.png.log) is appended to by every mount of the map: read one mount's part. */
function logSize(map: string): number {
  return existsSync(`${map}.log`) ? statSync(`${map}.log`).size : 0;
}

function logSince(map: string, offset: number): string {
  return readFileSync(`${map}.log`).subarray(offset).toString('utf8');
}

/** A map left dirty by a SIGKILLed daemon after fsync'd writes, its dead mount released. */
async function crashedMap(name: string, seed: number): Promise<CrashedMap> {
  const map = join(work, `${name}.png`);
  await mkfs(map, '64M');
  // No checkpoint may run before the kill, or the map would be clean again.
  const m = await mount(map, ['-o', 'journal.checkpoint_interval_s=3600']);
  const synced = await py<Record<string, string>>(WRITE_PY, [m.mountpoint, String(seed)]);
  process.kill(m.pid, 'SIGKILL');
  await waitFor('the daemon to die', () => !pidAlive(m.pid), 30_000);
  const released = await imapfs(['umount', m.mountpoint]);
  expect(released).toMatchObject({ status: 0, stderr: '' });
  expect(isMounted(m.mountpoint)).toBe(false);
  const sb = await superblock(map);
  expect(sb.state).toBe('dirty');
  return { map, mountpoint: m.mountpoint, synced, generation: sb.generation };
}

/** Every fsync'd file reads back byte-identical, and the directory holds exactly them. */
async function expectIntact(mountpoint: string, synced: Record<string, string>): Promise<void> {
  const names = Object.keys(synced).sort();
  const got = await py<Record<string, unknown>>(HASH_PY, [mountpoint, JSON.stringify(names)]);
  expect(got).toEqual({ ...synced, '#entries': names.map((n) => n.slice('d/'.length)) });
}

/** Unmounts cleanly; then the PNG is valid and fsck finds nothing. */
async function expectCleanAfterUmount(m: Mount): Promise<void> {
  const r = await umount(m);
  mounts.splice(mounts.indexOf(m), 1);
  expect(r?.status).toBe(0);
  expect((await superblock(m.map)).state).toBe('clean');
  const png = await pngcheck(m.map);
  expect(png.stdout + png.stderr).toMatch(/No errors detected/);
  expect(png.status).toBe(0);
  const check = await fsck(m.map);
  expect(check.problems).toEqual([]);
  expect(check.clean).toBe(true);
}

/** A fault that fires once: one journal restart, recovery completes on the second delivery. */
async function expectRecoveredAfterOneFault(mode: 'crash' | 'hang', seed: number): Promise<void> {
  const c = await crashedMap(`${mode}-once`, seed);
  const logFrom = logSize(c.map);
  const started = Date.now();
  const m = await mount(
    c.map,
    [...hangTimeout(mode), '--fault', `journal ${mode} --count 1 --op recover`],
    c.mountpoint,
  );
  mounts.push(m);
  // A hang costs one journal.hang_timeout_s (2 s here), not the 30 s default.
  expect(Date.now() - started).toBeLessThan(20_000);
  // Recovery ran to its end before anything was served: its closing checkpoint is in the map.
  expect(await superblock(c.map)).toEqual({ state: 'clean', generation: c.generation + 1 });
  await expectIntact(m.mountpoint, c.synced);
  const s = await stats(m.mountpoint);
  expect(s.actors['journal']).toMatchObject({ state: 'ready', restarts: 1 });
  const recovery = s['recovery'] as RecoveryStats;
  // The fault fired on the first delivery, before any repair: the second did the whole recovery.
  expect(recovery.attempt).toBe(2);
  expect(recovery.recovered).toBeTruthy();
  const log = logSince(c.map, logFrom);
  expect(log.match(/journal actor failed during recovery/g)).toHaveLength(1);
  expect(log).toMatch(mode === 'crash' ? /InjectedCrash/ : /no heartbeat for \d+ ms: worker hung/);
  await expectCleanAfterUmount(m);
  // Offline afterwards, `imapfs info` still tells what the mount's recovery did: the repair came
  // from the intent log, reading only the blocks of the regions written before the SIGKILL.
  const info = await imapfs(['info', c.map, '--json']);
  const last = (JSON.parse(info.stdout) as { lastRecovery: LastRecoveryJson | null }).lastRecovery;
  expect(last?.atMs).toBeGreaterThanOrEqual(started);
  expect(last?.recovered).toMatchObject({ scope: 'intents' });
  expect(last!.recovered!.blocksScanned).toBeLessThan(last!.recovered!.blockCount);
}

interface LastRecoveryJson {
  atMs: number;
  recovered: { scope: string; blocksScanned: number; blockCount: number } | null;
}

/** A fault on every delivery: a clear error, nothing mounted, lock released; a plain mount then recovers. */
async function expectCleanFailureThenRecovery(mode: 'crash' | 'hang', seed: number): Promise<void> {
  const c = await crashedMap(`${mode}-always`, seed);
  const logFrom = logSize(c.map);
  const started = Date.now();
  const r = await imapfs([
    'mount',
    c.map,
    c.mountpoint,
    '--json',
    ...hangTimeout(mode),
    '--fault',
    `journal ${mode} --op recover`,
  ]);
  const out = JSON.parse(r.stdout) as {
    ok: boolean;
    pid?: number;
    error: { code: string; message: string; hint: string };
  };
  // Should it wrongly mount, afterAll still unmounts it.
  if (out.ok) mounts.push({ map: c.map, mountpoint: c.mountpoint, pid: out.pid!, log: `${c.map}.log` });
  expect(r.status).toBe(1);
  expect(out.ok).toBe(false);
  expect(out.error.code).toBe('IMAP_E_RECOVERY_FAILED');
  expect(out.error.message).toContain(`Run \`imapfs fsck --repair ${c.map}\`, then mount again`);
  expect(out.error.message).toMatch(/recover failed on 3 workers/);
  if (mode === 'hang') expect(out.error.message).toMatch(/raise journal\.hang_timeout_s/);
  expect(out.error.hint).toMatch(/imapfs fsck --repair MAP/);
  // Three deliveries, each ended by the fault (a hang by the 2 s heartbeat timeout), then the error.
  expect(Date.now() - started).toBeLessThan(60_000);
  expect(isMounted(c.mountpoint)).toBe(false);
  expect(existsSync(`${c.map}.lock`)).toBe(false);
  const log = logSince(c.map, logFrom);
  expect(log.match(/journal actor failed during recovery/g)).toHaveLength(3);
  expect(log).toMatch(/"code":"IMAP_E_RECOVERY_FAILED"/);
  expect(log).not.toMatch(/"msg":"mounted"/);

  // Nothing was lost: the next plain mount recovers and serves exactly what was fsync'd.
  // The failed attempts were stopped before they changed anything (the fault fires first).
  expect(await superblock(c.map)).toEqual({ state: 'dirty', generation: c.generation });
  const m = await mount(c.map, [], c.mountpoint);
  mounts.push(m);
  expect(await superblock(c.map)).toEqual({ state: 'clean', generation: c.generation + 1 });
  await expectIntact(m.mountpoint, c.synced);
  const s = await stats(m.mountpoint);
  expect(s.actors['journal']).toMatchObject({ state: 'ready', restarts: 0 });
  expect((s['recovery'] as RecoveryStats).attempt).toBe(1);
  await expectCleanAfterUmount(m);
}

describe('a crash of the journal actor during recovery', () => {
  it('once: the journal is restarted, recovery completes, fsync’d data intact, fsck and pngcheck pass', () =>
    expectRecoveredAfterOneFault('crash', 1));

  it('every time: mount fails with IMAP_E_RECOVERY_FAILED and what to do; nothing mounted; a plain mount recovers', () =>
    expectCleanFailureThenRecovery('crash', 2));
});

describe('a hang of the journal actor during recovery', () => {
  it('once: the heartbeat catches it, recovery completes on a new worker, fsync’d data intact', () =>
    expectRecoveredAfterOneFault('hang', 3));

  it('every time: mount fails with IMAP_E_RECOVERY_FAILED naming journal.hang_timeout_s; a plain mount recovers', () =>
    expectCleanFailureThenRecovery('hang', 4));
});

test('--fault is checked before the daemon starts', async () => {
  const map = join(work, 'bad-fault.png');
  await mkfs(map, '8M');
  const mnt = tempDir('mnt');
  try {
    const unknownActor = await imapfs(['mount', map, mnt, '--fault', 'jurnal crash --count 1']);
    expect(unknownActor.status).toBe(2);
    expect(unknownActor.stderr).toMatch(/IMAP_E_USAGE: .*no actor 'jurnal'/);
    const badMode = await imapfs(['mount', map, mnt, '--fault', 'journal explode']);
    expect(badMode.status).not.toBe(0);
    expect(badMode.stderr).toMatch(/IMAP_E_INVALID: .*mode must be one of/);
    expect(isMounted(mnt)).toBe(false);
  } finally {
    removeDir(mnt);
  }
});
