/**
 * A target is one filesystem under test. The runner only needs a directory to work in, the pid of
 * the process that serves it (for memory figures) and optional extras such as imapfs's stats.
 *
 * Lifecycle: `setup()` → any number of jobs → `teardown()`. setup registers its own undo steps with
 * cleanup.ts as it goes, so teardown after a half-finished setup is safe, and a signal mid-run
 * still unmounts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { onCleanup } from '../cleanup';
import { isMounted, run, waitForMount } from '../proc';

export interface TargetOptions {
  /** Parent of the target's temp dir; on the same disk as native. */
  readonly workdir: string;
  /** Size of images and maps. */
  readonly imageBytes: number;
  /** Root of the imapfs checkout (bin/imapfs, dist/). */
  readonly repoRoot: string;
  /** The sequential file the jobs write, so a target can size its storage with headroom. */
  readonly seqFileBytes?: number;
  /**
   * Injected per-I/O delay for this target (the regression detector's proof), ms. A target with
   * its own delay knob applies it inside the filesystem (see `ownDelay`); otherwise the jobs
   * emulate it (fio thinktime, a sleep before each metadata call).
   */
  readonly delayMs?: number;
}

/** Thrown by setup() when a target cannot run here; the run continues without it. */
export class TargetUnavailable extends Error {}

/** Cache counters a target may expose (only imapfs does, through `imapfs stats`). */
export interface CacheStats {
  readonly hits: number | null;
  readonly misses: number | null;
  readonly hitRatio: number | null;
}

export abstract class Target {
  abstract readonly name: string;
  /** One line for the report: what this target is and why it is in the comparison. */
  abstract readonly description: string;
  /** The directory jobs write into; valid after setup(). */
  dir = '';
  /** The process serving the mount (FUSE daemon), or null for in-kernel filesystems. */
  daemonPid: number | null = null;
  /** Version strings for the machine section of the report. */
  versions: Record<string, string> = {};
  /**
   * How this target applies an injected delay, when it has its own knob (imapfs:
   * `-o scheduler.io_delay_ms=N`, a slowdown inside the build under test). Null: the jobs emulate
   * it from outside with fio thinktime and a sleep before each metadata call.
   */
  ownDelay: string | null = null;
  protected base = '';
  private undos: (() => void)[] = [];

  constructor(protected readonly opts: TargetOptions) {}

  abstract setup(): Promise<void>;

  async teardown(): Promise<void> {
    // The registered undo steps are the teardown; running them here also unregisters them.
    for (const forget of this.undos.reverse()) forget();
    this.undos = [];
    for (const step of this.steps.reverse()) await step();
    this.steps = [];
  }

  /** Counters for the cache job; null when the target has no cache of its own. */
  async cacheStats(): Promise<CacheStats | null> {
    return null;
  }

  private steps: (() => Promise<void>)[] = [];

  /** Registers an undo step both for teardown() and for signals/exceptions. */
  protected undo(name: string, step: () => Promise<void>): void {
    let done = false;
    const once = async () => {
      if (done) return;
      done = true;
      await step();
    };
    this.steps.push(once);
    this.undos.push(onCleanup(`${this.name}: ${name}`, once));
  }

  /** A fresh temp dir for this target, removed at teardown (only once nothing is mounted in it). */
  protected makeBase(): string {
    this.base = mkdtempSync(join(this.opts.workdir, `imapfs-bench-${this.name}-`));
    const base = this.base;
    this.undo('remove temp dir', async () => {
      for (const mp of [join(base, 'mnt')]) {
        if (isMounted(mp)) throw new Error(`${mp} is still mounted; left ${base} in place`);
      }
      rmSync(base, { recursive: true, force: true });
    });
    return base;
  }

  /** Unmounts a FUSE mount, lazily if it is busy, and waits until the kernel lists it no more. */
  protected async fuseUnmount(mnt: string): Promise<void> {
    if (!isMounted(mnt)) return;
    const r = await run('fusermount3', ['-u', mnt], { timeoutMs: 60_000 });
    if (r.code !== 0) await run('fusermount3', ['-uz', mnt], { timeoutMs: 30_000 });
    if (!(await waitForMount(mnt, false, 30_000))) throw new Error(`could not unmount ${mnt}`);
  }
}
