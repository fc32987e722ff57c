/**
 * Progress of long CLI operations (put, get, import, export, fsck), on stderr so that stdout keeps only the result:
 *   - on a TTY: a bar with percentage, MiB done, rate and ETA (MiB done and rate when the total is
 *     not known, as for an archive read from a pipe);
 *   - with --json: one JSON line per update, at most every PROGRESS_JSON_MS plus the first and the
 *     last (`{"progress":"put","doneBytes":…,"totalBytes":…,"bytesPerSecond":…,"etaSeconds":…}`);
 *   - otherwise (a pipe, no --json): nothing.
 */
import { SingleBar } from 'cli-progress';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

export type ProgressMode = 'tty' | 'json' | 'off';

const PROGRESS_JSON_MS = 500;
const MiB = 2 ** 20;

/** The mode for a command run with or without --json, from where stderr goes. */
export function progressMode(json: boolean): ProgressMode {
  if (json) return 'json';
  return process.stderr.isTTY ? 'tty' : 'off';
}

/** The fields of one progress report; `totalBytes` null when the total is not known in advance. */
export interface ProgressReport {
  progress: string;
  doneBytes: number;
  totalBytes: number | null;
  elapsedSeconds: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
}

export function progressReport(label: string, done: number, total: number, seconds: number): ProgressReport {
  const rate = seconds > 0 ? done / seconds : 0;
  const known = total > 0;
  return {
    progress: label,
    doneBytes: done,
    totalBytes: known ? total : null,
    elapsedSeconds: +seconds.toFixed(3),
    bytesPerSecond: Math.round(rate),
    etaSeconds: known && rate > 0 ? +(Math.max(0, total - done) / rate).toFixed(1) : null,
  };
}

const silent: Progress = { update: () => undefined, stop: () => undefined };

/** `total` ≤ 0 means unknown: JSON lines still go out, a TTY shows MiB done and the rate only. */
export function byteProgress(label: string, total: number, mode: ProgressMode): Progress {
  if (mode === 'json') return jsonProgress(label, total);
  if (mode === 'off') return silent;
  const known = total > 0;
  const bar = new SingleBar({
    format: known
      ? `${label} [{bar}] {percentage}% | {value}/{total} MiB | {rate} MiB/s | ETA {eta_formatted}`
      : `${label} {value} MiB | {rate} MiB/s`,
    stream: process.stderr,
    hideCursor: true,
    etaBuffer: 50,
  });
  const started = process.hrtime.bigint();
  bar.start(known ? Math.round(total / MiB) : 0, 0, { rate: '0.0' });
  return {
    update: (done) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const rate = seconds > 0 ? done / MiB / seconds : 0;
      bar.update(Math.round(done / MiB), { rate: rate.toFixed(1) });
    },
    stop: () => bar.stop(),
  };
}

function jsonProgress(label: string, total: number): Progress {
  const started = process.hrtime.bigint();
  let last = -Infinity;
  let done = 0;
  let stopped = false;
  const emit = (): void => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    process.stderr.write(`${JSON.stringify(progressReport(label, done, total, seconds))}\n`);
    last = seconds * 1000;
  };
  emit();
  return {
    update: (n) => {
      done = n;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (ms - last >= PROGRESS_JSON_MS) emit();
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      emit();
    },
  };
}
