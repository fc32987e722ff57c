/**
 * Streaming through a real mount: a 256 MiB file written and read back with small cache and dirty
 * budgets, the daemon's memory bounded by them; and a daemon killed (SIGKILL) in the middle of a
 * large write, several times, leaving the file at its last fsync'd state or later, never garbage.
 *
 * The file content is a counter: the 8-byte little-endian word at byte offset o is o / 8, so any
 * misplaced, stale or zeroed cluster shows as a wrong word at a known offset.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'bin', 'imapfs');
const MiB = 1024 * 1024;

const WRITER = `
import os, sys, array
path, total, sync_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
block = 1 << 20
for off in range(0, total, block):
    os.write(fd, array.array('Q', range(off // 8, (off + block) // 8)).tobytes())
    if (off + block) % sync_every == 0:
        os.fsync(fd)
        print('synced', off + block, flush=True)
os.close(fd)
print('done', flush=True)
`;

function imapfs(args: string[], opts: { allowFail?: boolean } = {}): string {
  try {
    return execFileSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    if (opts.allowFail) return '';
    const e = err as { stderr?: string; stdout?: string };
    throw new Error(`imapfs ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

function statusKb(pid: number, key: string): number {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`no ${key} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Offset of the first word that is not the counter, or -1; reads with async I/O (the mount is served by another process anyway). */
async function firstBadOffset(file: string, length: number): Promise<number> {
  const fh = await fs.promises.open(file, 'r');
  const buf = Buffer.alloc(4 * MiB);
  try {
    for (let off = 0; off < length; off += buf.length) {
      const want = Math.min(buf.length, length - off);
      const { bytesRead } = await fh.read(buf, 0, want, off);
      if (bytesRead !== want) return off + bytesRead;
      const words = new BigUint64Array(buf.buffer, buf.byteOffset, want / 8);
      const base = BigInt(off / 8);
      for (let i = 0; i < words.length; i++) if (words[i] !== base + BigInt(i)) return off + i * 8;
    }
  } finally {
    await fh.close();
  }
  return -1;
}

function daemonPid(mnt: string): number {
  return (JSON.parse(imapfs(['stats', mnt, '--json'])) as { pid: number }).pid;
}

function releaseMount(mnt: string): void {
  imapfs(['umount', mnt], { allowFail: true });
  if (fs.readFileSync('/proc/mounts', 'utf8').includes(` ${mnt} `)) {
    execFileSync('fusermount3', ['-uz', mnt], { stdio: 'ignore' });
  }
}

describe('streaming through a mount', () => {
  let dir: string;
  let mnt: string;
  let map: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imapfs-test-stream-'));
    mnt = path.join(dir, 'mnt');
    map = path.join(dir, 'map.png');
    fs.mkdirSync(mnt);
    fs.writeFileSync(path.join(dir, 'writer.py'), WRITER);
  });

  afterAll(() => {
    releaseMount(mnt);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a 256 MiB file round-trips and the daemon stays within its memory budgets', async () => {
    const cfg = path.join(dir, 'small.yaml');
    fs.writeFileSync(cfg, 'cache: { l1_bytes: 16M, l2_bytes: 16M }\nio: { max_dirty_bytes: 16M }\n');
    imapfs(['mkfs', map, '--size', '384M']);
    imapfs(['mount', map, mnt, '--config', cfg]);
    const pid = daemonPid(mnt);
    await new Promise((r) => setTimeout(r, 500));
    const idleKb = statusKb(pid, 'VmRSS');

    const size = 256 * MiB;
    execFileSync('python3', [
      path.join(dir, 'writer.py'),
      path.join(mnt, 'big'),
      String(size),
      String(64 * MiB),
    ]);
    expect(fs.statSync(path.join(mnt, 'big')).size).toBe(size);
    expect(await firstBadOffset(path.join(mnt, 'big'), size)).toBe(-1);
    // A second reader through cp: the same bytes land on native disk.
    execFileSync('cp', [path.join(mnt, 'big'), path.join(dir, 'copy')]);
    expect(await firstBadOffset(path.join(dir, 'copy'), size)).toBe(-1);
    fs.rmSync(path.join(dir, 'copy'));

    const peakKb = statusKb(pid, 'VmHWM');
    // L1 + L2 + dirty buffers + read-ahead windows (at most 2 × io.readahead_bytes, default 8M)
    // + 64 MiB for the runtime, workers and the read slots foreground reads use.
    const budgetKb = (16 + 16 + 16 + 2 * 8 + 64) * 1024;
    expect(peakKb - idleKb).toBeLessThanOrEqual(budgetKb);

    imapfs(['umount', mnt]);
    execFileSync('pngcheck', ['-q', map]);
    imapfs(['fsck', map]);
  });

  test('SIGKILL of the daemon mid-write leaves the last fsync or later, never garbage', async () => {
    const size = 96 * MiB;
    const syncEvery = 8 * MiB;
    for (let trial = 0; trial < 3; trial++) {
      imapfs(['mount', map, mnt]);
      const pid = daemonPid(mnt);
      const file = path.join(mnt, `victim-${trial}`);
      const writer = spawn('python3', [path.join(dir, 'writer.py'), file, String(size), String(syncEvery)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let synced = 0;
      writer.stdout.setEncoding('utf8');
      writer.stdout.on('data', (chunk: string) => {
        for (const m of chunk.matchAll(/synced (\d+)/g)) synced = Number(m[1]);
      });
      const writerDone = new Promise<void>((resolve) => writer.on('exit', () => resolve()));
      // Kill at a different point each trial, always after at least one fsync was acknowledged.
      const killAfter = syncEvery * (1 + trial * 3);
      while (synced < killAfter) {
        await new Promise((r) => setTimeout(r, 20));
        if (writer.exitCode !== null) break;
      }
      await new Promise((r) => setTimeout(r, 50 + trial * 120));
      process.kill(pid, 'SIGKILL');
      const acknowledged = synced;
      await writerDone; // the writer sees ENOTCONN/EIO and exits
      for (let i = 0; i < 300 && fs.existsSync(`/proc/${pid}`); i++)
        await new Promise((r) => setTimeout(r, 100));
      releaseMount(mnt);

      imapfs(['mount', map, mnt]);
      const st = fs.statSync(file);
      expect(st.size).toBeGreaterThanOrEqual(acknowledged);
      expect(st.size % 8).toBe(0);
      expect(await firstBadOffset(file, st.size)).toBe(-1);
      imapfs(['umount', mnt]);
      execFileSync('pngcheck', ['-q', map]);
      imapfs(['fsck', map]);
    }
  });
});
