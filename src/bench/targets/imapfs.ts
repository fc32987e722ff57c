/**
 * imapfs itself: a fresh map made with `imapfs mkfs`, mounted in the foreground so that the bench
 * owns the daemon process, and unmounted with `imapfs umount` so that the measured run ends with a
 * real clean unmount (drain and checkpoint), as a user's would.
 *
 * - The map is the image size, or bigger when the sequential file plus headroom would not fit
 *   (copy-on-write needs free clusters for the random-write job's rewrites, and metadata its own).
 * - The daemon's pid (for VmHWM) is the `pid` field of `imapfs stats --json`, the process that
 *   serves the mount, whatever wraps it.
 * - An injected delay is passed to the daemon as `-o scheduler.io_delay_ms=N`, so the slowdown
 *   happens inside the build under test (every map I/O waits N ms), not in the load generator.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Target, TargetUnavailable, type CacheStats } from './target';
import { startDaemon, stopDaemon } from './daemon';
import { isMounted, run } from '../proc';

export class ImapfsTarget extends Target {
  readonly name = 'imapfs';
  readonly description = 'imapfs on a fresh map (this build)';
  private mnt = '';

  /** node arguments that start the CLI: bin/imapfs when built, else the source through tsx. */
  private cli(): string[] {
    if (existsSync(join(this.opts.repoRoot, 'dist', 'cli', 'main.js')))
      return [join(this.opts.repoRoot, 'bin', 'imapfs')];
    return ['--require', 'tsx/cjs', join(this.opts.repoRoot, 'src', 'cli', 'main.ts')];
  }

  private imapfs(args: readonly string[], timeoutMs = 120_000) {
    return run(process.execPath, [...this.cli(), ...args], { timeoutMs });
  }

  async setup(): Promise<void> {
    if (!existsSync(join(this.opts.repoRoot, 'dist', 'cli', 'main.js'))) {
      this.versions.imapfs = 'run from source through tsx (no dist build)';
    }
    const base = this.makeBase();
    const map = join(base, 'bench.png');
    this.mnt = join(base, 'mnt');
    mkdirSync(this.mnt);
    const mkfs = await this.imapfs(['mkfs', map, '--size', String(mapBytes(this.opts))]);
    if (mkfs.code !== 0) {
      throw new TargetUnavailable(`imapfs mkfs failed (is it built yet?): ${firstLine(mkfs.stderr)}`);
    }
    const mnt = this.mnt;
    const delayMs = this.opts.delayMs ?? 0;
    const mountOpts: string[] = [];
    if (delayMs > 0) {
      mountOpts.push('-o', `scheduler.io_delay_ms=${delayMs}`);
      this.ownDelay = `-o scheduler.io_delay_ms=${delayMs} (inside the daemon: every map I/O waits)`;
    }
    const daemon = await startDaemon(
      'imapfs mount',
      process.execPath,
      [...this.cli(), 'mount', map, mnt, '--foreground', ...mountOpts],
      mnt,
    );
    this.undo('unmount imapfs', async () => {
      if (isMounted(mnt)) {
        const r = await this.imapfs(['umount', mnt]);
        if (r.code !== 0) await this.fuseUnmount(mnt);
      }
      await stopDaemon(daemon, 60_000);
    });
    this.dir = mnt;
    this.daemonPid = (await this.statsPid()) ?? daemon.pid;
  }

  /** `imapfs stats MNT --json`, parsed; null if the command fails or prints no object. */
  private async stats(): Promise<Record<string, unknown> | null> {
    const r = await this.imapfs(['stats', this.mnt, '--json'], 30_000);
    if (r.code !== 0) return null;
    try {
      const doc: unknown = JSON.parse(r.stdout);
      return isRecord(doc) ? doc : null;
    } catch {
      return null;
    }
  }

  /** The serving process as the daemon reports it (`pid`). */
  private async statsPid(): Promise<number | null> {
    const doc = await this.stats();
    const pid = doc ? num(doc.pid) : null;
    return pid !== null && pid > 0 ? pid : null;
  }

  /**
   * `imapfs stats MNT --json`, field cache.hitRatio (and cache.hits / cache.misses when present, so
   * the job can take the ratio of its own reads rather than since mount).
   */
  override async cacheStats(): Promise<CacheStats | null> {
    const doc = await this.stats();
    const cache = doc && isRecord(doc.cache) ? doc.cache : null;
    if (!cache) return null;
    return { hits: num(cache.hits), misses: num(cache.misses), hitRatio: num(cache.hitRatio) };
  }
}

const MiB = 1024 * 1024;

/**
 * The map size for mkfs: the image size, but at least twice the sequential file plus 64 MiB, in
 * whole MiB. Twice because the random-write and mixed jobs rewrite the file copy-on-write, so old
 * and new clusters coexist until the commit frees the old ones.
 */
export function mapBytes(o: { imageBytes: number; seqFileBytes?: number }): number {
  const need = 2 * (o.seqFileBytes ?? 0) + 64 * MiB;
  return Math.ceil(Math.max(o.imageBytes, need) / MiB) * MiB;
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
