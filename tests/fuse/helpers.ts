/**
 * Mount helpers for the FUSE tests: the filesystem runs in a child process (never call into your
 * own mount synchronously); the test process drives it with async fs calls and child processes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

export const ROOT = resolve(__dirname, '..', '..');
export const run = promisify(execFile);

export interface Mounted {
  mountpoint: string;
  child: ChildProcess;
  stderr: () => string;
  unmount: () => Promise<void>;
  /** Throws if the daemon has exited or the mount is gone (e.g. unmounted by another process). */
  assertAlive: () => void;
}

export function isMounted(mountpoint: string): boolean {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === mountpoint);
}

/** Spawns memfs on a fresh mountpoint under os.tmpdir() and waits for the kernel's INIT. */
export async function mountMemfs(options = 'allow_other,default_permissions'): Promise<Mounted> {
  const mountpoint = mkdtempSync(join(tmpdir(), 'imapfs-test-'));
  const child = spawn(
    process.execPath,
    ['--require', 'tsx/cjs', join(ROOT, 'src/fuse/memfs/main.ts'), mountpoint, '-o', options],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`memfs did not start: ${err}`)), 30000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolveReady();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`memfs exited with ${code}: ${err}`));
    });
  });
  child.removeAllListeners('exit');
  let exitInfo: string | null = null;
  child.on('exit', (code, sig) => (exitInfo = `code ${code} signal ${sig}`));
  const assertAlive = () => {
    if (exitInfo !== null)
      throw new Error(`memfs exited (${exitInfo}): ${err || 'no stderr; unmounted from outside?'}`);
    if (!isMounted(mountpoint)) throw new Error(`${mountpoint} is no longer mounted`);
  };
  const unmount = async () => {
    if (isMounted(mountpoint)) await run('fusermount3', ['-uz', mountpoint]).catch(() => undefined);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    rmSync(mountpoint, { recursive: true, force: true });
  };
  return { mountpoint, child, stderr: () => err, unmount, assertAlive };
}

/** Runs a python3 snippet with argv[1] = the mountpoint (for bytes paths, ns times, xattr sizes). */
export async function py(code: string, mountpoint: string): Promise<string> {
  const { stdout } = await run('python3', ['-c', code, mountpoint]);
  return stdout.trim();
}
