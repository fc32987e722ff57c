/**
 * One repetition of every job on one target. The order is fixed and each job reuses what the one
 * before left, so a repetition writes the big file once:
 *
 *   seq write (new file, end_fsync) → drop caches → seq read → drop caches → random read →
 *   random write → mixed 70/30 x4 → working-set re-reads → metadata → remove the file
 *
 * Page cache: every job uses buffered I/O (direct=0), the path ordinary programs take and the one
 * FUSE filesystems must serve well. To make reads reach the filesystem rather than the kernel's
 * cache of what was just written, the harness syncs the target and drops the page cache
 * (/proc/sys/vm/drop_caches) before each read phase; that works for FUSE mounts too, whose pages
 * live in the same cache. Without root it cannot, and the run records that in its notes.
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchSizes } from './config';
import { runFio, type FioOptions } from './fio';
import { emptyValues, type MetricValues } from './metrics';
import { dropCaches, resetPeakRss, run, statusKiB } from './proc';
import type { Target } from './targets';
import type { MetadataRates } from './metadata-worker';

export interface JobContext {
  readonly sizes: BenchSizes;
  /** Artificial per-operation delay for this target (the regression detector's proof), ms. */
  readonly delayMs: number;
  readonly log: (line: string) => void;
}

export interface RepResult {
  readonly values: MetricValues;
  readonly notes: string[];
  readonly seconds: number;
}

const MB = 1e6;

export async function runRepetition(target: Target, ctx: JobContext): Promise<RepResult> {
  const t0 = Date.now();
  const v = emptyValues();
  const notes: string[] = [];
  const { sizes } = ctx;
  const file = join(target.dir, 'bench.seq');
  // thinktime is fio's pause between I/Os: a real slowdown of the stream, as a slower build would be.
  const delay: FioOptions =
    ctx.delayMs > 0 ? { thinktime: Math.round(ctx.delayMs * 1000), thinktime_blocks: 1 } : {};
  const drop = async () => {
    // fsync the file first (`sync FILE`): `sync -f` is a no-op on a FUSE mount without syncfs, so
    // a daemon's write-behind backlog would otherwise drain during the next read job and be
    // measured as read time (imapfs: the working-set pass after the mixed job read 0.03 MB/s).
    if (existsSync(file)) await run('sync', [file], { timeoutMs: 120_000 });
    if (!(await dropCaches(target.dir)) && !notes.includes('page cache not dropped (needs root)')) {
      notes.push('page cache not dropped (needs root)');
    }
  };
  const step = async (what: string, fn: () => Promise<void>) => {
    ctx.log(`  ${target.name}: ${what}`);
    try {
      await fn();
    } catch (err) {
      notes.push(`${what} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  if (existsSync(file)) rmSync(file);
  const seqBytes = sizes.seqFileBytes;
  const pid = target.daemonPid;
  if (pid !== null && !resetPeakRss(pid))
    notes.push('peak RSS could not be reset; it covers the whole mount');

  await step('sequential write', async () => {
    const r = await runFio('seqwrite', {
      filename: file,
      rw: 'write',
      bs: '1M',
      size: seqBytes,
      end_fsync: 1,
      runtime: sizes.seqMaxSeconds,
      ...delay,
    });
    v.seqWriteMBps = r.write.bwBytes / MB;
    if (r.write.ioBytes < seqBytes) notes.push(`sequential write stopped at ${sizes.seqMaxSeconds}s bound`);
  });
  await drop();
  await step('sequential read', async () => {
    const r = await runFio('seqread', {
      filename: file,
      rw: 'read',
      bs: '1M',
      size: seqBytes,
      runtime: sizes.seqMaxSeconds,
      ...delay,
    });
    v.seqReadMBps = r.read.bwBytes / MB;
  });
  if (pid !== null) {
    const hwm = statusKiB(pid, 'VmHWM');
    v.peakRssMiB = hwm === null ? null : hwm / 1024;
  }
  await drop();

  // The random and mixed jobs address the sequential file, so they need no layout of their own.
  const timedJob = {
    filename: file,
    size: seqBytes,
    bs: '4k',
    time_based: 1,
    runtime: sizes.randSeconds,
    norandommap: 1,
  };
  await step('random read', async () => {
    const r = await runFio('randread', { ...timedJob, rw: 'randread', ...delay });
    v.randReadIops = r.read.iops;
    v.randReadP50Us = r.read.p50Us;
    v.randReadP99Us = r.read.p99Us;
  });
  await step('random write', async () => {
    const r = await runFio('randwrite', { ...timedJob, rw: 'randwrite', ...delay });
    v.randWriteIops = r.write.iops;
    v.randWriteP50Us = r.write.p50Us;
    v.randWriteP99Us = r.write.p99Us;
  });
  await step('mixed 70/30', async () => {
    const r = await runFio('mixed', { ...timedJob, rw: 'randrw', rwmixread: 70, numjobs: 4, ...delay });
    v.mixedReadIops = r.read.iops;
    v.mixedWriteIops = r.write.iops;
    v.mixedP99Us = r.read.p99Us;
  });
  await step('working-set re-reads', async () => {
    const res = await cacheJob(target, file, sizes, delay, drop);
    v.cacheReadMBps = res.warmMBps;
    v.cacheHitRatio = res.hitRatio;
    if (res.note) notes.push(res.note);
  });
  await step('metadata', async () => {
    const rates = await runMetadataWorker(target.dir, sizes.metaFiles, ctx.delayMs, sizes.metaMaxSeconds);
    if (rates.files < sizes.metaFiles)
      notes.push(`metadata stopped at ${rates.files} files (${sizes.metaMaxSeconds}s bound)`);
    v.metaCreateOps = rates.create;
    v.metaStatOps = rates.stat;
    v.metaRenameOps = rates.rename;
    v.metaUnlinkOps = rates.unlink;
  });
  if (existsSync(file)) rmSync(file);
  return { values: v, notes, seconds: (Date.now() - t0) / 1000 };
}

/**
 * Reads the first cacheSetBytes of the file once cold and then cachePasses times warm, dropping the
 * kernel page cache before every pass so the reads reach the daemon and its own cache is what is
 * measured. The hit ratio is taken over the warm passes from counter deltas when the daemon
 * exposes hits and misses, else its reported hitRatio.
 */
async function cacheJob(
  target: Target,
  file: string,
  sizes: BenchSizes,
  delay: FioOptions,
  drop: () => Promise<void>,
): Promise<{ warmMBps: number; hitRatio: number | null; note: string | null }> {
  const pass = async () => {
    await drop();
    const r = await runFio('workingset', {
      filename: file,
      rw: 'read',
      bs: '128k',
      size: Math.min(sizes.cacheSetBytes, sizes.seqFileBytes),
      // Bounded like the timed jobs: several passes must not cost several sequential bounds.
      runtime: sizes.randSeconds,
      ...delay,
    });
    return r.read.bwBytes / MB;
  };
  await pass();
  const before = await target.cacheStats();
  const warm: number[] = [];
  for (let i = 0; i < sizes.cachePasses; i++) warm.push(await pass());
  const after = await target.cacheStats();
  const warmMBps = warm.reduce((a, b) => a + b, 0) / warm.length;
  if (after === null) {
    const note =
      target.name === 'imapfs' ? '`imapfs stats --json` gave no cache.hitRatio; recorded null' : null;
    return { warmMBps, hitRatio: null, note };
  }
  if (
    before &&
    before.hits !== null &&
    before.misses !== null &&
    after.hits !== null &&
    after.misses !== null
  ) {
    const hits = after.hits - before.hits;
    const total = hits + (after.misses - before.misses);
    if (total > 0) return { warmMBps, hitRatio: hits / total, note: null };
    const note =
      `\`${target.name} stats --json\` counted no cache hits or misses over the warm passes ` +
      `(cache.hits ${after.hits}, cache.misses ${after.misses}): reads bypass its cache; recorded null`;
    return { warmMBps, hitRatio: null, note };
  }
  return { warmMBps, hitRatio: after.hitRatio, note: 'hit ratio is since mount (no hit/miss counters)' };
}

/** The metadata job in a child process; under ts-jest or tsx the .ts file runs through tsx. */
function runMetadataWorker(
  dir: string,
  count: number,
  delayMs: number,
  maxSeconds: number,
): Promise<MetadataRates> {
  const script = join(__dirname, `metadata-worker${__filename.endsWith('.ts') ? '.ts' : '.js'}`);
  const execArgv = script.endsWith('.ts') ? ['--require', 'tsx/cjs'] : [];
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...execArgv, script, dir, String(count), String(delayMs), String(maxSeconds)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`metadata worker exited ${code}: ${err.trim()}`));
      try {
        resolve(JSON.parse(out) as MetadataRates);
      } catch {
        reject(new Error(`metadata worker printed no result: ${out.trim()} ${err.trim()}`));
      }
    });
  });
}
