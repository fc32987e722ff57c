/** `imapfs put MAP.png SRC DEST`: copy a file or a tree into the map (offline), then checkpoint. */
import type { Command } from 'commander';
import { openMap } from '../../fs/open-map';
import { printResult } from '../output';
import { byteProgress, progressMode } from '../progress';
import { chunkSizeOption, formatBytes, parseChunkSize } from '../size';
import { CopyIn, hostTreeBytes } from '../tree-copy';

/** Between checkpoints, a durable point every this many bytes lets overwritten clusters be reused. */
const SYNC_EVERY = 1 << 30;

/** A bytes-written callback that reaches a durable point every SYNC_EVERY bytes (put, import). */
export function syncEvery(opened: { sync(): void }): (bytes: number) => void {
  let nextSync = SYNC_EVERY;
  return (bytes) => {
    if (bytes >= nextSync) {
      opened.sync();
      nextSync += SYNC_EVERY;
    }
  };
}

export function registerPut(program: Command): void {
  program
    .command('put')
    .description('copy a file or directory tree into the map')
    .argument('<map>', 'the map file')
    .argument('<src>', 'a local file or directory')
    .argument('<dest>', 'a path inside the map, such as / or /dir/name')
    .option('--no-grow', 'fail with IMAP_E_NO_SPACE instead of growing the map')
    .option('--json', 'print the result as JSON')
    .addOption(chunkSizeOption())
    .action(
      (
        mapPath: string,
        src: string,
        dest: string,
        opts: { json?: boolean; grow: boolean; chunkSize: string },
      ) => {
        const json = opts.json === true;
        const chunkBytes = parseChunkSize(opts.chunkSize);
        const srcPath = Buffer.from(src);
        const mode = progressMode(json);
        const bar = byteProgress('put', mode === 'off' ? 0 : hostTreeBytes(srcPath), mode);
        const opened = openMap(mapPath, { grow: opts.grow });
        const started = process.hrtime.bigint();
        try {
          const sync = syncEvery(opened);
          const copy = new CopyIn(
            opened.fs,
            opened.io,
            (bytes) => {
              bar.update(bytes);
              sync(bytes);
            },
            chunkBytes,
          );
          const stats = copy.run(srcPath, dest);
          opened.checkpoint();
          bar.stop();
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          printResult(json, { map: mapPath, ...stats, chunkBytes, seconds, side: opened.map.side }, () => [
            `put ${stats.files} files, ${stats.directories} directories, ${stats.symlinks} symlinks` +
              `${stats.hardlinks ? `, ${stats.hardlinks} hard links` : ''}: ${formatBytes(stats.bytes)} in ${seconds.toFixed(2)} s`,
          ]);
        } finally {
          bar.stop();
          opened.close();
        }
      },
    );
}
