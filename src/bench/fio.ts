/**
 * Running one fio job and reading the figures we need from its JSON output. fio writes the JSON to
 * a file (--output) because on stdout it can be preceded by warnings.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './proc';

export type FioOptions = Record<string, string | number>;

export interface FioSide {
  /** Bytes per second over the job's runtime. */
  readonly bwBytes: number;
  readonly iops: number;
  readonly ioBytes: number;
  /** Completion-latency percentiles in microseconds, null when fio recorded no I/O. */
  readonly p50Us: number | null;
  readonly p99Us: number | null;
}

export interface FioResult {
  readonly read: FioSide;
  readonly write: FioSide;
}

/**
 * Options every job shares. psync is the path an ordinary program takes; fallocate=none makes the
 * write path allocate as it goes on every target (not all FUSE filesystems implement fallocate);
 * randrepeat=0 stops two repetitions from replaying the same offsets into a warm cache.
 */
const COMMON: FioOptions = {
  ioengine: 'psync',
  fallocate: 'none',
  randrepeat: 0,
  direct: 0,
  group_reporting: 1,
};

export async function runFio(name: string, options: FioOptions): Promise<FioResult> {
  const out = mkdtempSync(join(tmpdir(), 'imapfs-bench-fio-'));
  try {
    const file = join(out, 'out.json');
    const args = [`--name=${name}`, '--output-format=json', `--output=${file}`];
    const { runtime: seconds, ...rest } = options;
    const runtime = Number(seconds ?? 0);
    // fio's bare numbers are whole seconds; milliseconds let tests run sub-second jobs.
    if (runtime > 0) args.push(`--runtime=${Math.max(1, Math.round(runtime * 1000))}ms`);
    for (const [k, v] of Object.entries({ ...COMMON, ...rest })) args.push(`--${k}=${v}`);
    // fio bounds itself with runtime; this outer bound only catches a wedged mount.
    const r = await run('fio', args, { timeoutMs: (runtime + 300) * 1000 });
    if (r.code !== 0)
      throw new Error(`fio ${name} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
    return parseFioJson(readFileSync(file, 'utf8'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export function parseFioJson(text: string): FioResult {
  const doc = JSON.parse(text.slice(text.indexOf('{'))) as { jobs?: unknown[] };
  const job = doc.jobs?.[0] as Record<string, unknown> | undefined;
  if (!job) throw new Error('fio output has no jobs');
  const err = job.error;
  if (typeof err === 'number' && err !== 0) throw new Error(`fio job failed with errno ${err}`);
  return { read: side(job.read), write: side(job.write) };
}

function side(raw: unknown): FioSide {
  const s = (raw ?? {}) as {
    bw_bytes?: number;
    iops?: number;
    io_bytes?: number;
    clat_ns?: { percentile?: Record<string, number> };
  };
  const pct = s.clat_ns?.percentile;
  const io = s.io_bytes ?? 0;
  const us = (key: string) => (io > 0 && pct && typeof pct[key] === 'number' ? pct[key] / 1000 : null);
  return {
    bwBytes: s.bw_bytes ?? 0,
    iops: s.iops ?? 0,
    ioBytes: io,
    p50Us: us('50.000000'),
    p99Us: us('99.000000'),
  };
}

export function fioVersion(): Promise<string | null> {
  return run('fio', ['--version']).then(
    (r) => (r.code === 0 ? r.stdout.trim() : null),
    () => null,
  );
}
