/**
 * The `null` target: the native binding's in-memory example filesystem. It does no storage work,
 * so it is the ceiling of the FUSE path through our own binding; imapfs/null says how much of that
 * ceiling imapfs keeps.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Target, TargetUnavailable } from './target';
import { startDaemon, stopDaemon } from './daemon';

export class MemfsTarget extends Target {
  readonly name = 'null';
  readonly description = "the FUSE binding's in-memory example fs (src/fuse/memfs): the FUSE ceiling";

  async setup(): Promise<void> {
    const built = join(this.opts.repoRoot, 'dist', 'fuse', 'memfs', 'main.js');
    const source = join(this.opts.repoRoot, 'src', 'fuse', 'memfs', 'main.ts');
    // From a checkout without a build, run the source through tsx: the same code, transpiled once at
    // start, so only startup differs. Production always has dist.
    let args: string[];
    if (existsSync(built)) args = [built];
    else if (existsSync(source)) {
      args = ['--require', 'tsx/cjs', source];
      this.versions.null = 'memfs run from source through tsx (no dist build)';
    } else
      throw new TargetUnavailable(
        `${built} does not exist yet (build the FUSE binding and run npm run build)`,
      );
    const mnt = join(this.makeBase(), 'mnt');
    mkdirSync(mnt);
    const daemon = await startDaemon('memfs', process.execPath, [...args, mnt], mnt);
    this.undo('unmount memfs', async () => {
      await this.fuseUnmount(mnt);
      await stopDaemon(daemon);
    });
    this.dir = mnt;
    this.daemonPid = daemon.pid;
  }
}
