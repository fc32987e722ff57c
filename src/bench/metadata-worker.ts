/**
 * The metadata job, run as its own process so that its clock sees only file-system calls, never
 * the harness. It uses async fs one call at a time: the figure is the latency-bound rate one
 * program gets, the same way the fuse-native reference numbers in DESIGN §7 were taken.
 *
 * Usage: node metadata-worker.js DIR COUNT [DELAY_MS [MAX_SECONDS]] → prints {"create":…,…} ops/s
 * DELAY_MS sleeps before each call: the harness's injected slowdown for the regression test.
 * MAX_SECONDS bounds each phase, so a slow target cannot blow the run's time budget.
 */
import { mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface MetadataRates {
  readonly create: number;
  readonly stat: number;
  readonly rename: number;
  readonly unlink: number;
  /** Files the phases worked on: fewer than asked when the create phase hit the time bound. */
  readonly files: number;
}

/** Runs op(0..count-1) one at a time, stopping early at the wall-clock bound; returns ops done and rate. */
async function timed(
  count: number,
  delayMs: number,
  maxSeconds: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ done: number; rate: number }> {
  let busyNs = 0n;
  const deadline = Date.now() + maxSeconds * 1000;
  let i = 0;
  for (; i < count && Date.now() < deadline; i++) {
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    const t0 = process.hrtime.bigint();
    await op(i);
    busyNs += process.hrtime.bigint() - t0;
    // The injected delay is counted as if the file system had taken it.
    if (delayMs > 0) busyNs += BigInt(Math.round(delayMs * 1e6));
  }
  return { done: i, rate: i / (Number(busyNs) / 1e9) };
}

export async function metadataJob(
  dir: string,
  count: number,
  delayMs = 0,
  maxSeconds = Infinity,
): Promise<MetadataRates> {
  const work = join(dir, 'meta');
  await mkdir(work);
  const name = (i: number) => join(work, `f${i}`);
  const moved = (i: number) => join(work, `g${i}`);
  const create = await timed(count, delayMs, maxSeconds, async (i) => (await open(name(i), 'wx')).close());
  // Later phases work on the files that exist; a bound hit there only shortens the phase.
  const n = create.done;
  const st = await timed(n, delayMs, maxSeconds, (i) => stat(name(i)));
  const rn = await timed(n, delayMs, maxSeconds, (i) => rename(name(i), moved(i)));
  const ul = await timed(rn.done, delayMs, maxSeconds, (i) => unlink(moved(i)));
  await rm(work, { recursive: true, force: true });
  return { create: create.rate, stat: st.rate, rename: rn.rate, unlink: ul.rate, files: n };
}

if (require.main === module) {
  const [dir, count, delay, bound] = process.argv.slice(2);
  if (!dir || !count) {
    process.stderr.write('usage: metadata-worker DIR COUNT [DELAY_MS [MAX_SECONDS_PER_PHASE]]\n');
    process.exit(2);
  }
  metadataJob(dir, Number(count), Number(delay ?? 0), Number(bound ?? Infinity)).then(
    (rates) => process.stdout.write(`${JSON.stringify(rates)}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
