/**
 * A whole run: set up every target, run the jobs interleaved (A B C A B C …) for each repetition so
 * that drift on a shared machine touches every target alike, take medians, compute ratios, tear
 * everything down whatever happens.
 */
import { loadavg } from 'node:os';
import type { BenchSizes } from './config';
import { mediansOf, ratiosOf, type BenchDocument, type RunRecord, type TargetInfo } from './document';
import { runRepetition } from './jobs';
import { machineInfo } from './machine';
import type { MetricValues } from './metrics';
import { hasCommand, run } from './proc';
import { runCleanups } from './cleanup';
import { makeTarget, TargetUnavailable, type Target } from './targets';

export interface RunOptions {
  readonly targets: readonly string[];
  readonly subject: string;
  readonly repetitions: number;
  readonly quick: boolean;
  readonly sizes: BenchSizes;
  readonly workdir: string;
  readonly repoRoot: string;
  /** Artificial per-I/O delay, applied to `injectInto` only (the detector's proof). */
  readonly injectDelayMs: number;
  readonly injectInto: string;
  readonly log: (line: string) => void;
}

export async function runBench(opts: RunOptions): Promise<BenchDocument> {
  const started = new Date();
  const loadStart = loadavg();
  const samples1m: number[] = [];
  await ensureFio(opts.log);
  const live: Target[] = [];
  const infos: TargetInfo[] = [];
  const runs: RunRecord[] = [];
  try {
    for (const name of opts.targets) {
      const delay = name === opts.injectInto ? opts.injectDelayMs : 0;
      const t = makeTarget(name, {
        workdir: opts.workdir,
        imageBytes: opts.sizes.imageBytes,
        repoRoot: opts.repoRoot,
        seqFileBytes: opts.sizes.seqFileBytes,
        delayMs: delay,
      });
      opts.log(`bench: setting up ${name}`);
      try {
        await t.setup();
        live.push(t);
        infos.push(info(t, true, null, delay));
      } catch (err) {
        await t.teardown();
        if (!(err instanceof TargetUnavailable)) throw err;
        opts.log(`bench: skipping ${name}: ${err.message}`);
        infos.push(info(t, false, err.message, delay));
      }
    }
    for (let rep = 1; rep <= opts.repetitions; rep++) {
      for (const t of live) {
        samples1m.push(loadavg()[0] ?? 0);
        opts.log(`bench: repetition ${rep}/${opts.repetitions}, ${t.name} (load ${fmtLoad(loadavg())})`);
        // A target with its own delay knob got it at setup; the jobs then add nothing from outside.
        const delayMs = t.name === opts.injectInto && t.ownDelay === null ? opts.injectDelayMs : 0;
        const r = await runRepetition(t, { sizes: opts.sizes, delayMs, log: opts.log });
        for (const n of r.notes) opts.log(`  note: ${n}`);
        runs.push({ target: t.name, repetition: rep, seconds: r.seconds, values: r.values, notes: r.notes });
      }
    }
  } finally {
    for (const t of live.reverse()) await t.teardown();
    await runCleanups(opts.log);
  }
  const medians: Record<string, MetricValues> = {};
  for (const i of infos) if (i.available) medians[i.name] = mediansOf(runs, i.name);
  const versions: Record<string, string> = {};
  for (const i of infos) Object.assign(versions, i.versions);
  return {
    schema: 1,
    startedAt: started.toISOString(),
    durationSeconds: (Date.now() - started.getTime()) / 1000,
    quick: opts.quick,
    sizes: opts.sizes,
    repetitions: opts.repetitions,
    subject: opts.subject,
    machine: machineInfo(opts.repoRoot, versions),
    loadAverage: { start: loadStart, end: loadavg(), samples1m },
    targets: infos,
    runs,
    medians,
    ratios: ratiosOf(medians, opts.subject),
  };
}

function info(t: Target, available: boolean, skipReason: string | null, injectedDelayMs: number): TargetInfo {
  return {
    name: t.name,
    description: t.description,
    available,
    skipReason,
    versions: t.versions,
    injectedDelayMs,
    injectedHow:
      injectedDelayMs > 0
        ? (t.ownDelay ?? 'fio thinktime before each I/O, a sleep before each metadata call')
        : null,
  };
}

/** The issue asks the suite to install Debian's fio if it is missing; that needs root and apt. */
async function ensureFio(log: (line: string) => void): Promise<void> {
  if (hasCommand('fio')) return;
  if (process.getuid?.() !== 0 || !hasCommand('apt-get')) {
    throw new Error('fio is not installed: run `sudo apt-get install -y fio` (or bash scripts/setup.sh)');
  }
  log('bench: installing fio (apt-get install -y fio)');
  const r = await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'fio'], {
    timeoutMs: 600_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.code !== 0 || !hasCommand('fio')) throw new Error(`could not install fio: ${r.stderr.trim()}`);
}

function fmtLoad(l: number[]): string {
  return l.map((x) => x.toFixed(2)).join(' ');
}
