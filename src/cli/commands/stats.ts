/** `imapfs stats MOUNTPOINT`: live counters from the running daemon. */
import type { Command } from 'commander';
import { controlRequest } from '../../daemon/control';
import { controlSocketPath } from '../../daemon/paths';
import { formatStats, type DaemonStats } from '../../daemon/stats';

export function registerStats(program: Command): void {
  program
    .command('stats')
    .description('live counters from a mounted map: ops, latencies, queues, actors, cache')
    .argument('<mountpoint>')
    .option('--json', 'print JSON')
    .action(async (mountpoint: string, opts: { json?: boolean }) => {
      const stats = (await controlRequest(controlSocketPath(mountpoint), { cmd: 'stats' })) as DaemonStats;
      process.stdout.write(opts.json ? `${JSON.stringify(stats, null, 2)}\n` : formatStats(stats));
    });
}
