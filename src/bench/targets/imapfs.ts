/**
 * imapfs itself: a fresh map made with `imapfs mkfs`, mounted in the foreground so that the bench
 * holds the daemon's pid (for RSS), and unmounted with `imapfs umount` so that the measured run
 * ends with a real clean unmount (drain and checkpoint), as a user's would.
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
    const mkfs = await this.imapfs(['mkfs', map, '--size', String(this.opts.imageBytes)]);
    if (mkfs.code !== 0) {
      throw new TargetUnavailable(`imapfs mkfs failed (is it built yet?): ${firstLine(mkfs.stderr)}`);
    }
    const mnt = this.mnt;
    const daemon = await startDaemon(
      'imapfs mount',
      process.execPath,
      [...this.cli(), 'mount', map, mnt, '--foreground'],
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
    this.daemonPid = daemon.pid;
  }

  /**
   * `imapfs stats MNT --json`, field cache.hitRatio (and cache.hits / cache.misses when present, so
   * the job can take the ratio of its own reads rather than since mount).
   */
  override async cacheStats(): Promise<CacheStats | null> {
    const r = await this.imapfs(['stats', this.mnt, '--json'], 30_000);
    if (r.code !== 0) return null;
    try {
      const doc: unknown = JSON.parse(r.stdout);
      const cache = isRecord(doc) && isRecord(doc.cache) ? doc.cache : null;
      if (!cache) return null;
      return { hits: num(cache.hits), misses: num(cache.misses), hitRatio: num(cache.hitRatio) };
    } catch {
      return null;
    }
  }
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
