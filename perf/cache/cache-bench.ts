/**
 * Cache figures through a real mount (the compiled daemon; run `npm run build` first):
 *
 *   1. hit rate of repeated reads of a working set that fits L1 + L2 (target ≥ 95 %),
 *   2. the median (and p99) time of one L1 eviction, deflate into L2 included (target < 1 ms),
 *   3. sequential cold reads with prefetch on vs off, as a ratio, with the map on a plain disk and
 *      with a slow device (scheduler.io_delay_ms),
 *   4. many small files written together, read cold in directory order, with neighbour prefetch off
 *      (cache.prefetch.neighbour_clusters=0) vs on (64), as a ratio, with io_delay_ms 0 and 1.
 *
 *   npx tsx perf/cache/cache-bench.ts [--only hit|seq|neighbour] [--json out.json]
 *       [--working-set-mib 12] [--seq-mib 32] [--repeat 2] [--small-files 400]
 *   EXTRA_OPTS='scheduler.max_inflight=1 …' adds mount options to the sequential runs (3).
 *
 * Every pass reopens the file: the kernel drops a FUSE file's page cache on open (no keep_cache), so
 * the reads reach the daemon. Figures go to stdout (and --json). Not a timed test.
 */
import { execFileSync } from 'node:child_process';
import { promises as fsp, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'imapfs');
const MiB = 1 << 20;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
}

function imapfs(args: string[]): string {
  return execFileSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

interface CacheDoc {
  hits: number;
  misses: number;
  hitRatio: number | null;
  evictions: number;
  evictionUs: { median: number; p99: number; samples: number };
  l1: { bytes: number; entries: number };
  l2: { bytes: number; entries: number; skippedIncompressible: number };
  prefetch: { issued: number; hits: number; neighbourIssued: number; neighbourHits: number };
  windows: { neighbourWindows: number } | null;
}

function cacheStats(mnt: string): CacheDoc {
  return (JSON.parse(imapfs(['stats', mnt, '--json'])) as { cache: CacheDoc }).cache;
}

/** Text-like content (compresses ~3–5× with deflate level 1), different per file. */
function content(bytes: number, seed: number): Buffer {
  const words = [
    'cluster',
    'map',
    'pixel',
    'extent',
    'journal',
    'scheduler',
    'cache',
    'inode',
    'hilbert',
    'png',
  ];
  const parts: string[] = [];
  let x = seed >>> 0 || 1;
  let n = 0;
  while (n < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const w = `${words[x % words.length]} ${x % 10007} `;
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

async function readThrough(file: string): Promise<number> {
  const fh = await fsp.open(file, 'r');
  const buf = Buffer.alloc(MiB);
  let total = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, total);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return total;
}

async function withMount<T>(opts: string[], body: (mnt: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'imapfs-perf-cache-'));
  const map = path.join(dir, 'map.png');
  const mnt = path.join(dir, 'mnt');
  await fsp.mkdir(mnt);
  imapfs(['mkfs', map, '--size', '256M']);
  imapfs(['mount', map, mnt, '--json', ...opts.flatMap((o) => ['-o', o])]);
  try {
    return await body(mnt);
  } finally {
    try {
      imapfs(['umount', mnt]);
    } catch {
      execFileSync('fusermount3', ['-uz', mnt]);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

async function writeSynced(file: string, data: Buffer): Promise<void> {
  const fh = await fsp.open(file, 'w');
  await fh.write(data);
  await fh.sync();
  await fh.close();
}

async function hitRate(workingSetMiB: number): Promise<Record<string, unknown>> {
  return withMount(['cache.l1_bytes=8M', 'cache.l2_bytes=8M'], async (mnt) => {
    const files = 4;
    const per = Math.floor((workingSetMiB * MiB) / files);
    for (let i = 0; i < files; i++) await writeSynced(path.join(mnt, `ws${i}`), content(per, i + 1));
    for (let i = 0; i < files; i++) await readThrough(path.join(mnt, `ws${i}`)); // cold pass
    const before = cacheStats(mnt);
    const passes = 5;
    for (let p = 0; p < passes; p++)
      for (let i = 0; i < files; i++) await readThrough(path.join(mnt, `ws${i}`));
    const after = cacheStats(mnt);
    const hits = after.hits - before.hits;
    const misses = after.misses - before.misses;
    // Eviction times: churn through a second working set so that L1 → L2 evictions happen.
    await writeSynced(path.join(mnt, 'churn'), content(24 * MiB, 99));
    await readThrough(path.join(mnt, 'churn'));
    const churned = cacheStats(mnt);
    return {
      workingSetMiB,
      l1MiB: 8,
      l2MiB: 8,
      passes,
      hits,
      misses,
      hitRate: hits / (hits + misses),
      l1Entries: after.l1.entries,
      l2Entries: after.l2.entries,
      l2MiBUsed: after.l2.bytes / MiB,
      evictions: churned.evictions,
      evictionMedianUs: churned.evictionUs.median,
      evictionP99Us: churned.evictionUs.p99,
      evictionSamples: churned.evictionUs.samples,
    };
  });
}

async function sequential(
  seqMiB: number,
  ioDelayMs: number,
  prefetch: boolean,
): Promise<Record<string, unknown>> {
  const opts = [
    `scheduler.io_delay_ms=${ioDelayMs}`,
    `cache.prefetch.enabled=${prefetch}`,
    'cache.l1_bytes=64M',
    'cache.l2_bytes=16M',
    ...(process.env.EXTRA_OPTS ? process.env.EXTRA_OPTS.split(' ') : []),
  ];
  return withMount(opts, async (mnt) => {
    const file = path.join(mnt, 'seq');
    await writeSynced(file, content(seqMiB * MiB, 7));
    // Cold: nothing of this file in the cache (a write never fills the cache; drop what a flush left).
    const t0 = process.hrtime.bigint();
    const bytes = await readThrough(file);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const st = cacheStats(mnt);
    return {
      prefetch,
      ioDelayMs,
      MiB: bytes / MiB,
      seconds: s,
      MBps: bytes / 1e6 / s,
      prefetchIssued: st.prefetch.issued,
      prefetchHits: st.prefetch.hits,
    };
  });
}

/**
 * Small files (1–2 clusters, text) written one after the other into one directory, unmounted, then
 * mounted again (cold: empty cache, no warm file, no page cache) and read in directory order.
 */
async function smallFiles(
  count: number,
  ioDelayMs: number,
  neighbour: number,
): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'imapfs-perf-cache-'));
  const map = path.join(dir, 'map.png');
  const mnt = path.join(dir, 'mnt');
  await fsp.mkdir(mnt);
  imapfs(['mkfs', map, '--size', '256M']);
  const unmount = (): void => {
    try {
      imapfs(['umount', mnt]);
    } catch {
      execFileSync('fusermount3', ['-uz', mnt]);
    }
  };
  try {
    imapfs(['mount', map, mnt, '--json']);
    let bytes = 0;
    try {
      await fsp.mkdir(path.join(mnt, 'd'));
      let x = 12345;
      for (let i = 0; i < count; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        const size = 1024 + (x % 7168); // 1–8 KiB: one or two clusters
        await fsp.writeFile(path.join(mnt, 'd', `f${String(i).padStart(5, '0')}`), content(size, i + 1));
        bytes += size;
      }
    } finally {
      unmount();
    }
    rmSync(`${map}.cachewarm`, { force: true });
    const opts = [
      `scheduler.io_delay_ms=${ioDelayMs}`,
      `cache.prefetch.neighbour_clusters=${neighbour}`,
      'cache.l1_bytes=64M',
      'cache.l2_bytes=16M',
    ];
    imapfs(['mount', map, mnt, '--json', ...opts.flatMap((o) => ['-o', o])]);
    try {
      const t0 = process.hrtime.bigint();
      const names = await fsp.readdir(path.join(mnt, 'd'));
      let read = 0;
      for (const n of names) read += (await fsp.readFile(path.join(mnt, 'd', n))).length;
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (read !== bytes) throw new Error(`read ${read} bytes of ${bytes}`);
      const st = cacheStats(mnt);
      return {
        neighbour,
        ioDelayMs,
        files: names.length,
        MiB: read / MiB,
        seconds: s,
        filesPerS: names.length / s,
        misses: st.misses,
        neighbourWindows: st.windows?.neighbourWindows ?? 0,
        neighbourIssued: st.prefetch.neighbourIssued,
        neighbourHits: st.prefetch.neighbourHits,
      };
    } finally {
      unmount();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const workingSet = Number(arg('working-set-mib', '12'));
  const seqMiB = Number(arg('seq-mib', '32'));
  const out: Record<string, unknown> = {
    when: new Date().toISOString(),
    load: execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim(),
  };
  const only = arg('only', '');
  const wants = (what: string): boolean => only === '' || only === what;
  const repeat = Number(arg('repeat', '2'));
  if (wants('hit')) {
    out.hitRate = await hitRate(workingSet);
    console.log('hit rate:', JSON.stringify(out.hitRate));
  }
  if (wants('seq')) {
    // Off and on alternate, `repeat` times each; the gain compares the best of each (this VM is shared).
    const seq: Record<string, unknown>[] = [];
    for (const delay of [0, 1]) {
      const offs: Record<string, unknown>[] = [];
      const ons: Record<string, unknown>[] = [];
      for (let r = 0; r < repeat; r++) {
        offs.push(await sequential(seqMiB, delay, false));
        ons.push(await sequential(seqMiB, delay, true));
      }
      const best = (xs: Record<string, unknown>[]): number => Math.max(...xs.map((x) => x.MBps as number));
      const gain = best(ons) / best(offs);
      seq.push({ ioDelayMs: delay, off: offs, on: ons, gain });
      console.log(
        `sequential cold read, io_delay_ms=${delay}:`,
        JSON.stringify({ off: offs, on: ons, gain }),
      );
    }
    out.sequential = seq;
  }
  if (wants('neighbour')) {
    const count = Number(arg('small-files', '400'));
    const rows: Record<string, unknown>[] = [];
    for (const delay of [0, 1]) {
      const offs: Record<string, unknown>[] = [];
      const ons: Record<string, unknown>[] = [];
      for (let r = 0; r < repeat; r++) {
        offs.push(await smallFiles(count, delay, 0));
        ons.push(await smallFiles(count, delay, 64));
      }
      const best = (xs: Record<string, unknown>[]): number =>
        Math.max(...xs.map((x) => x.filesPerS as number));
      const gain = best(ons) / best(offs);
      rows.push({ ioDelayMs: delay, off: offs, on: ons, gain });
      console.log(
        `small files cold in directory order, io_delay_ms=${delay}:`,
        JSON.stringify({ off: offs, on: ons, gain }),
      );
    }
    out.neighbour = rows;
  }
  const json = arg('json', '');
  if (json) writeFileSync(json, JSON.stringify(out, null, 2));
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
