/** `imapfs get MAP.png SRC DEST`: copy a file or a tree out of the map. */
import type { Command } from 'commander';
import { openMap } from '../../fs/open-map';
import { printResult } from '../output';
import { byteProgress, progressMode } from '../progress';
import { chunkSizeOption, formatBytes, parseChunkSize } from '../size';
import { CopyOut } from '../tree-copy';

export function registerGet(program: Command): void {
  program
    .command('get')
    .description('copy a file or directory tree out of the map')
    .argument('<map>', 'the map file')
    .argument('<src>', 'a path inside the map')
    .argument('<dest>', 'a local path (an existing directory receives SRC by its name)')
    .option('--json', 'print the result as JSON')
    .addOption(chunkSizeOption())
    .action((mapPath: string, src: string, dest: string, opts: { json?: boolean; chunkSize: string }) => {
      const json = opts.json === true;
      const chunkBytes = parseChunkSize(opts.chunkSize);
      const opened = openMap(mapPath, { grow: false });
      const started = process.hrtime.bigint();
      try {
        const root = opened.fs.resolve(src);
        const bar = byteProgress(
          'get',
          root.size > 0 && (root.mode & 0o170000) === 0o100000 ? root.size : 0,
          progressMode(json),
        );
        const copy = new CopyOut(opened.fs, opened.io, (bytes) => bar.update(bytes), chunkBytes);
        let stats;
        try {
          stats = copy.run(src, Buffer.from(dest));
        } finally {
          bar.stop();
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        printResult(json, { map: mapPath, ...stats, chunkBytes, seconds }, () => [
          `got ${stats.files} files, ${stats.directories} directories, ${stats.symlinks} symlinks` +
            `${stats.special ? ` (${stats.special} special files skipped)` : ''}: ${formatBytes(stats.bytes)} in ${seconds.toFixed(2)} s`,
        ]);
      } finally {
        opened.close();
      }
    });
}
