/**
 * Helpers for the real-mount tests: the compiled daemon (`node bin/imapfs`, built by `npm run build`)
 * runs in its own detached process; this test process drives the mount only through child processes
 * (cp, tar, rsync, python3) and async fs calls, never synchronously (DESIGN.md §9).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'imapfs');
/** The system python: pyenv's shim is not executable by the unprivileged users of setpriv. */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (never throws on a non-zero exit). */
export function run(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolveRun) => {
    const child = execFile(
      cmd,
      args,
      {
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
        timeout: options.timeoutMs ?? 300_000,
        env: options.env ?? process.env,
      },
      (err, stdout, stderr) => {
        const status = err ? (typeof err.code === 'number' ? err.code : (child.exitCode ?? -1)) : 0;
        resolveRun({ status, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** `bash -c script`; throws with the output when it fails. */
export async function sh(script: string, timeoutMs = 300_000): Promise<string> {
  const r = await run('bash', ['-euo', 'pipefail', '-c', script], { timeoutMs });
  if (r.status !== 0) throw new Error(`bash failed (${r.status}): ${script}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export async function imapfs(args: string[], timeoutMs = 300_000): Promise<RunResult> {
  return run(process.execPath, [BIN, ...args], { timeoutMs });
}

/** A python3 snippet with sys.argv[1:] = args; its stdout is parsed as JSON. Throws if it fails. */
export async function py<T = unknown>(code: string, args: string[], asUser?: number): Promise<T> {
  const cmd = asUser === undefined ? PYTHON : 'setpriv';
  const argv =
    asUser === undefined
      ? ['-c', code, ...args]
      : [`--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', PYTHON, '-c', code, ...args];
  const r = await run(cmd, argv);
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export function requireBuild(): void {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('the mount tests run the compiled daemon: run `npm run build` first');
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `imapfs-test-${prefix}-`));
}

export function isMounted(mountpoint: string): boolean {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === mountpoint);
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function mkfs(map: string, size: string): Promise<void> {
  const r = await imapfs(['mkfs', map, '--size', size]);
  if (r.status !== 0) throw new Error(`mkfs failed: ${r.stderr}`);
}

export interface Mount {
  map: string;
  mountpoint: string;
  pid: number;
  log: string;
}

/** Mounts `map` on a fresh mountpoint (or `mountpoint`) with `imapfs mount --json`. */
export async function mount(map: string, extra: string[] = [], mountpoint?: string): Promise<Mount> {
  const mnt = mountpoint ?? tempDir('mnt');
  const r = await imapfs(['mount', map, mnt, '--json', ...extra], 120_000);
  if (r.status !== 0) {
    throw new Error(`mount failed (${r.status}): ${r.stdout}${r.stderr}\n${logTail(`${map}.log`)}`);
  }
  const out = JSON.parse(r.stdout) as { pid: number; log: string };
  return { map, mountpoint: mnt, pid: out.pid, log: out.log };
}

function logTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
}

/**
 * `imapfs umount`; if that fails, releases the mount lazily and kills the daemon, so afterAll never
 * leaves a mount behind. Returns the umount result.
 */
export async function umount(m: Mount | null | undefined): Promise<RunResult | null> {
  if (!m) return null;
  let r: RunResult | null = null;
  if (isMounted(m.mountpoint)) r = await imapfs(['umount', m.mountpoint], 300_000);
  if (isMounted(m.mountpoint)) await run('fusermount3', ['-uz', m.mountpoint]);
  if (pidAlive(m.pid)) {
    await waitFor('the daemon to exit', () => !pidAlive(m.pid), 30_000).catch(() => {
      process.kill(m.pid, 'SIGKILL');
    });
  }
  return r;
}

export function removeDir(dir: string | undefined): void {
  // IMAPFS_TEST_KEEP=1 keeps maps and daemon logs of a failed run for a post-mortem.
  if (process.env.IMAPFS_TEST_KEEP) return;
  if (dir && !isMounted(dir)) rmSync(dir, { recursive: true, force: true });
}

export async function pngcheck(map: string): Promise<RunResult> {
  return run('pngcheck', ['-v', map]);
}

export async function fsck(map: string): Promise<{ clean: boolean; problems: unknown[]; raw: string }> {
  const r = await imapfs(['fsck', map, '--json']);
  try {
    const j = JSON.parse(r.stdout) as { clean: boolean; problems: unknown[] };
    return { ...j, raw: r.stdout + r.stderr };
  } catch {
    return { clean: false, problems: [r.stderr], raw: r.stdout + r.stderr };
  }
}

export interface DaemonStatsJson {
  pid: number;
  ops: Record<string, { count: number; errors: number; p50Us: number; p99Us: number }>;
  actors: Record<string, { state: string; restarts: number; inFlight: number }>;
  cache: { hitRatio: number | null };
  [k: string]: unknown;
}

export async function stats(mountpoint: string): Promise<DaemonStatsJson> {
  const r = await imapfs(['stats', mountpoint, '--json']);
  if (r.status !== 0) throw new Error(`stats failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as DaemonStatsJson;
}

/**
 * A manifest of a tree: relative path → type, permission bits, size, mtime (whole seconds unless
 * `ns`), symlink target and SHA-256 of the content. Computed by python in a child process.
 */
export async function manifest(dir: string, ns = false): Promise<Record<string, string>> {
  return py<Record<string, string>>(MANIFEST_PY, [dir, ns ? 'ns' : 's']);
}

const MANIFEST_PY = `
import hashlib, json, os, stat, sys
root, prec = sys.argv[1], sys.argv[2]
out = {}
for dirpath, dirnames, filenames in os.walk(root):
    for name in dirnames + filenames:
        p = os.path.join(dirpath, name)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        mt = st.st_mtime_ns if prec == 'ns' else st.st_mtime_ns // 1_000_000_000
        desc = '%o %d' % (stat.S_IMODE(st.st_mode), mt)
        if stat.S_ISLNK(st.st_mode):
            desc = 'link ' + os.readlink(p)
        elif stat.S_ISDIR(st.st_mode):
            desc = 'dir ' + desc
        else:
            h = hashlib.sha256()
            with open(p, 'rb') as f:
                while True:
                    b = f.read(1 << 20)
                    if not b: break
                    h.update(b)
            desc = 'file %s %d %s' % (desc, st.st_size, h.hexdigest())
        out[rel] = desc
print(json.dumps(out))
`;

/**
 * Writes a deterministic tree: `small` files in nested directories (0–8 KiB, seeded PRNG), symlinks,
 * a hardlink, mixed modes and ns mtimes, plus one file per entry of `bigMiB` of seeded random bytes.
 */
export async function makeTree(dir: string, small: number, bigMiB: number[]): Promise<void> {
  await py(MAKE_TREE_PY, [dir, String(small), bigMiB.join(',')]);
}

const MAKE_TREE_PY = `
import json, os, random, sys
root, small, big = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split(',') if x]
rng = random.Random(4)
os.makedirs(root, exist_ok=True)
dirs = [root]
for i in range(small // 40 + 1):
    d = os.path.join(rng.choice(dirs), 'dir%03d' % i)
    os.makedirs(d, exist_ok=True)
    dirs.append(d)
files = []
for i in range(small):
    p = os.path.join(rng.choice(dirs), 'f%05d.%s' % (i, rng.choice(['txt', 'bin', 'c', 'dat'])))
    with open(p, 'wb') as f:
        f.write(rng.randbytes(rng.choice([0, 1, 100, 4095, 4096, 4097, rng.randrange(8192)])))
    os.chmod(p, rng.choice([0o644, 0o600, 0o755, 0o444]))
    os.utime(p, ns=(1_600_000_000_123_456_789 + i, 1_650_000_000_987_654_321 + i * 1_000_003))
    files.append(p)
for i in range(20):
    os.symlink(os.path.relpath(files[i], root) if i % 2 else '/nonexistent/target%d' % i, os.path.join(root, 'link%02d' % i))
os.link(files[0], os.path.join(root, 'hardlink-to-first'))
os.makedirs(os.path.join(root, 'big'), exist_ok=True)
for i, mib in enumerate(big):
    r = random.Random(100 + i)
    with open(os.path.join(root, 'big', 'big%d.bin' % i), 'wb') as f:
        for _ in range(mib):
            f.write(r.randbytes(1 << 20))
for d in reversed(dirs):
    os.utime(d, ns=(1_600_000_000_000_000_001, 1_650_000_000_000_000_002))
print(json.dumps({'files': len(files)}))
`;
