/** `imapfs mkfs MAP.png [--size N] [--force]`: a new, empty map (it grows by itself later). */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { acquireMapLock } from '../../fs/map-lock';
import { createMap, removeMapFiles } from '../../fs/open-map';
import { MapContainer } from '../../map';
import { ImapError } from '../../protocol/errors';
import { printResult } from '../output';
import { formatBytes, parseSize } from '../size';

interface MkfsOptions {
  size: string;
  force?: boolean;
  json?: boolean;
}

export function registerMkfs(program: Command): void {
  program
    .command('mkfs')
    .description('create an empty map')
    .argument('<map>', 'the PNG file to create')
    .option('--size <size>', 'initial capacity, such as 64M or 1G (the map grows when full)', '64M')
    .option('--force', 'replace an existing map and its sidecar')
    .option('--json', 'print the result as JSON')
    .action((mapPath: string, opts: MkfsOptions) => {
      const side = MapContainer.sideForCapacity(parseSize(opts.size));
      if (existsSync(mapPath)) {
        if (!opts.force) throw new ImapError('IMAP_E_EXISTS', `${mapPath} (use --force to replace it)`);
        const lock = acquireMapLock(mapPath); // refuse to replace a map someone has open
        try {
          removeMapFiles(mapPath);
        } finally {
          lock.release();
        }
      }
      const uid = process.getuid?.() ?? 0;
      const gid = process.getgid?.() ?? 0;
      const opened = createMap(mapPath, side, { uid, gid });
      try {
        const sb = opened.map.superblock;
        const capacity = opened.map.clusterCount * 4096;
        printResult(
          opts.json === true,
          {
            map: mapPath,
            uuid: sb.uuid,
            side: opened.map.side,
            clusters: opened.map.clusterCount,
            capacity,
            generation: sb.generation,
          },
          () => [
            `created ${mapPath}: ${opened.map.side}×${opened.map.side} pixels, ${opened.map.clusterCount} clusters (${formatBytes(capacity)})`,
            `uuid ${sb.uuid}`,
          ],
        );
      } finally {
        opened.close();
      }
    });
}
