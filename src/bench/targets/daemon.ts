/**
 * Starting a FUSE daemon in the foreground and waiting until its mount appears. The daemon runs in
 * its own process group (detached) so that a Ctrl-C at the terminal reaches only the bench, which
 * then unmounts in order instead of racing the daemon's own signal handling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { TargetUnavailable } from './target';
import { isMounted, sleep } from '../proc';

export interface Daemon {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

export async function startDaemon(
  what: string,
  cmd: string,
  args: readonly string[],
  mnt: string,
  timeoutMs = 30_000,
): Promise<Daemon> {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let gone = false;
  let startError: Error | null = null;
  child.on('error', (err) => (startError = err));
  const exited = new Promise<void>((resolve) =>
    child.on('close', () => {
      gone = true;
      resolve();
    }),
  );
  const deadline = Date.now() + timeoutMs;
  while (!isMounted(mnt)) {
    if (gone || startError) {
      const why = startError
        ? (startError as Error).message
        : stderr.trim().split('\n').slice(-3).join(' | ');
      throw new TargetUnavailable(`${what} did not mount: ${why || 'exited without output'}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${what} did not mount ${mnt} within ${timeoutMs} ms: ${stderr.trim()}`);
    }
    await sleep(50);
  }
  if (child.pid === undefined) throw new Error(`${what} has no pid`);
  return { child, pid: child.pid, exited };
}

/** Waits for a daemon to exit after its unmount; kills it if it lingers. */
export async function stopDaemon(d: Daemon, graceMs = 10_000): Promise<void> {
  // The grace timer is cleared once the daemon is gone: a pending timer would keep the bench
  // process alive for the rest of the grace period after the run has finished.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), graceMs)));
  const how = await Promise.race([d.exited.then(() => 'exited' as const), timeout]);
  clearTimeout(timer);
  if (how === 'timeout') {
    d.child.kill('SIGKILL');
    await d.exited;
  }
}
