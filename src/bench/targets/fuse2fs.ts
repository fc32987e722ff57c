/**
 * ext4 in an image file of the map's size, served by e2fsprogs' fuse2fs: a mature FUSE filesystem
 * over a single file, which is the closest existing thing to what imapfs does.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Target, TargetUnavailable } from './target';
import { startDaemon, stopDaemon } from './daemon';
import { hasCommand, probe, run } from '../proc';

export class Fuse2fsTarget extends Target {
  readonly name = 'fuse2fs';
  readonly description = 'ext4 in an image of the same size, mounted with fuse2fs (libfuse 2, single file)';

  async setup(): Promise<void> {
    for (const tool of ['fuse2fs', 'mkfs.ext4', 'fusermount3']) {
      if (!hasCommand(tool))
        throw new TargetUnavailable(`${tool} is not installed (apt-get install fuse2fs e2fsprogs fuse3)`);
    }
    const base = this.makeBase();
    const image = join(base, 'ext4.img');
    const mnt = join(base, 'mnt');
    mkdirSync(mnt);
    const mk = await run('truncate', ['-s', String(this.opts.imageBytes), image]);
    if (mk.code !== 0) throw new Error(`truncate failed: ${mk.stderr}`);
    const fmt = await run('mkfs.ext4', ['-q', '-F', image], { timeoutMs: 120_000 });
    if (fmt.code !== 0) throw new Error(`mkfs.ext4 failed: ${fmt.stderr}`);
    // As root fuse2fs checks permissions for real; fakeroot is for ordinary users, whose files
    // would otherwise belong to root inside the image.
    const opts = process.getuid?.() === 0 ? [] : ['-o', 'fakeroot'];
    const daemon = await startDaemon('fuse2fs', 'fuse2fs', ['-f', image, mnt, ...opts], mnt);
    this.undo('unmount fuse2fs', async () => {
      await this.fuseUnmount(mnt);
      await stopDaemon(daemon);
    });
    this.dir = mnt;
    this.daemonPid = daemon.pid;
    const version = probe('fuse2fs', ['-V']);
    // -V also prints fusermount's and libfuse's versions; keep fuse2fs's own line and libfuse's.
    const lines = (version ?? '').split('\n').filter((l) => /^fuse2fs|FUSE library/.test(l));
    if (lines.length > 0) this.versions.fuse2fs = lines.map((l) => l.trim()).join(', ');
  }
}
