/**
 * Small process and /proc helpers. The bench process never serves a mount, so it may block on
 * calls into one; the waits here are all bounded so that a hung daemon fails the run instead of
 * hanging it.
 */
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion; rejects only if it cannot be started or passes `timeoutMs`. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`${cmd} ${args.join(' ')} took longer than ${opts.timeoutMs} ms`));
          }, opts.timeoutMs);
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command and returns its trimmed stdout, or null if it is missing or fails. */
export function probe(cmd: string, args: readonly string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0) return null;
  return `${r.stdout}${r.stderr}`.trim();
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Mount points as the kernel lists them (octal escapes such as \040 decoded). */
export function mountPoints(): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const field = line.split(' ')[1];
    if (field)
      out.add(field.replace(/\\([0-7]{3})/g, (_s, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

export function isMounted(dir: string): boolean {
  return mountPoints().has(dir);
}

/** Polls /proc/mounts until `dir` is (or is no longer) a mount point. */
export async function waitForMount(dir: string, mounted: boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (isMounted(dir) === mounted) return true;
    await sleep(50);
  }
  return isMounted(dir) === mounted;
}

/** A field of /proc/PID/status in KiB (VmHWM, VmRSS), or null if the process is gone. */
export function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Resets the peak-RSS mark of a process (clear_refs "5"), so VmHWM read later is the peak of the
 * jobs in between, not of the whole mount's life. Returns false without root or on old kernels.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Flushes the filesystem holding `path` and drops clean page-cache pages everywhere (FUSE mounts
 * included: their pages live in the same page cache). `sync -f` flushes only that filesystem so a
 * wedged unrelated mount cannot hang us. Returns false if the cache could not be dropped (not root).
 */
export async function dropCaches(path: string): Promise<boolean> {
  await run('sync', ['-f', path], { timeoutMs: 120_000 });
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}
