/**
 * Issue 8: no deadlocks or races under random operations from 16 threads for 60 s, checked against
 * a model (perf/fuse-stress/stress.py: each thread's files are compared with its own model on every
 * read and at the end; all threads also race in one shared directory). The scheduler runs with its
 * parallel executor and in-flight limits as configured by default. Afterwards the map passes fsck and
 * pngcheck. IMAPFS_STRESS_SECONDS shortens it for a local run.
 */
import { join } from 'node:path';
import {
  PYTHON,
  ROOT,
  fsck,
  mkfs,
  mount,
  pidAlive,
  pngcheck,
  removeDir,
  requireBuild,
  run,
  stats,
  tempDir,
  umount,
  type Mount,
} from './helpers';

jest.setTimeout(600_000);

const THREADS = 16;
const SECONDS = Number(process.env.IMAPFS_STRESS_SECONDS ?? 60);

interface StressResult {
  ops: number;
  unexpected_errors: string[];
  check_failures: string[];
}

let work: string;
let m: Mount | null = null;

beforeAll(async () => {
  requireBuild();
  work = tempDir('stress');
});

afterAll(async () => {
  await umount(m);
  removeDir(m?.mountpoint);
  removeDir(work);
});

test(`${THREADS} threads of random operations for ${SECONDS} s agree with the model`, async () => {
  const map = join(work, 'map.png');
  await mkfs(map, '256M');
  m = await mount(map);
  const r = await run(
    PYTHON,
    [
      join(ROOT, 'perf', 'fuse-stress', 'stress.py'),
      m.mountpoint,
      String(m.pid),
      String(THREADS),
      String(SECONDS),
    ],
    { timeoutMs: (SECONDS + 240) * 1000 },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const result = JSON.parse(r.stdout.trim().split('\n').pop() as string) as StressResult;
  expect(result.check_failures).toEqual([]);
  expect(result.unexpected_errors).toEqual([]);
  expect(result.ops).toBeGreaterThan(THREADS * 10);
  expect(pidAlive(m.pid)).toBe(true);

  const s = await stats(m.mountpoint);
  const scheduler = s.actors['scheduler'];
  expect(scheduler?.state).toBe('ready');
  expect(scheduler?.restarts).toBe(0);

  const u = await umount(m);
  expect(u?.status).toBe(0);
  m = null;
  expect((await pngcheck(map)).status).toBe(0);
  const check = await fsck(map);
  expect(check.problems).toEqual([]);
  expect(check.clean).toBe(true);
});
