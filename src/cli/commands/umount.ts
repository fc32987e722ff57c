/**
 * `imapfs umount MOUNTPOINT`: asks the daemon to drain, checkpoint and release; when no daemon
 * answers (it was killed), the kernel mount is released with fusermount3 so the mountpoint is usable.
 */
import { execFileSync } from 'node:child_process';
import type { Command } from 'commander';
import { controlRequest } from '../../daemon/control';
import { controlSocketPath, findMount } from '../../daemon/paths';
import { ImapError } from '../../protocol/errors';

async function waitUntilUnmounted(mountpoint: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (findMount(mountpoint)) {
    if (Date.now() > deadline) {
      throw new ImapError(
        'IMAP_E_TIMEOUT',
        `${mountpoint} is still mounted ${timeoutMs} ms after the daemon released it`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function releaseDeadMount(mountpoint: string): void {
  try {
    execFileSync('fusermount3', ['-u', mountpoint], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    // Busy (a process still has files open there): detach lazily so the mountpoint is freed when they close.
    execFileSync('fusermount3', ['-uz', mountpoint], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
}

export async function unmount(mountpoint: string): Promise<'daemon' | 'released-dead-mount'> {
  try {
    await controlRequest(controlSocketPath(mountpoint), { cmd: 'unmount' }, 600_000);
    await waitUntilUnmounted(mountpoint, 30_000);
    return 'daemon';
  } catch (err) {
    if (!(err instanceof ImapError && err.code === 'IMAP_E_NOT_MOUNTED')) throw err;
    if (!findMount(mountpoint)) throw new ImapError('IMAP_E_NOT_MOUNTED', `${mountpoint} is not mounted`);
    releaseDeadMount(mountpoint);
    await waitUntilUnmounted(mountpoint, 10_000);
    return 'released-dead-mount';
  }
}

export function registerUmount(program: Command): void {
  program
    .command('umount')
    .alias('unmount')
    .description('drain, checkpoint (the map becomes a complete PNG) and unmount')
    .argument('<mountpoint>')
    .option('--json', 'print the result as JSON')
    .action(async (mountpoint: string, opts: { json?: boolean }) => {
      const how = await unmount(mountpoint);
      if (opts.json) process.stdout.write(`${JSON.stringify({ ok: true, mountpoint, how })}\n`);
      else if (how === 'released-dead-mount') {
        process.stdout.write(
          `no daemon answered; released the dead mount ${mountpoint} (run \`imapfs fsck\` on its map)\n`,
        );
      } else process.stdout.write(`unmounted ${mountpoint}\n`);
    });
}
