/**
 * `imapfs import MAP.png [ARCHIVE|-] [DEST]`: a tar archive (a file, or stdin) into the map under
 * DEST (offline), growing the map as `put` does, then checkpoint. On a truncated or damaged archive
 * the member being read is removed, the members before it stay, the map is checkpointed, and the
 * command fails with IMAP_E_ARCHIVE_TRUNCATED or IMAP_E_ARCHIVE_CORRUPT naming the byte offset.
 */
import type { Command } from 'commander';
import { openMap } from '../../fs/open-map';
import { ByteSource } from '../archive/byte-source';
import { ArchiveImport } from '../archive/import-tree';
import { openArchiveInput } from '../archive/streams';
import { TarReader } from '../archive/tar-reader';
import { printResult } from '../output';
import { byteProgress, progressMode } from '../progress';
import { rethrowAfter } from '../report';
import { chunkSizeOption, formatBytes, parseChunkSize } from '../size';
import type { CopyStats } from '../tree-copy';
import { syncEvery } from './put';

export function registerImport(program: Command): void {
  program
    .command('import')
    .description('read a tar archive (pax, ustar or GNU) into the map')
    .argument('<map>', 'the map file')
    .argument('[archive]', 'a tar file, or - for stdin', '-')
    .argument('[dest]', 'a directory inside the map (created if missing)', '/')
    .option('--no-grow', 'fail with IMAP_E_NO_SPACE instead of growing the map')
    .option('--json', 'print the result as JSON')
    .addOption(chunkSizeOption())
    .action(
      async (
        mapPath: string,
        archive: string,
        dest: string,
        opts: { json?: boolean; grow: boolean; chunkSize: string },
      ) => {
        const json = opts.json === true;
        const chunkBytes = parseChunkSize(opts.chunkSize);
        const input = openArchiveInput(archive);
        // Progress counts archive bytes read: known in advance for a file, not for a pipe.
        const bar = byteProgress('import', input.size, progressMode(json));
        const opened = openMap(mapPath, { grow: opts.grow });
        const started = process.hrtime.bigint();
        try {
          const importer = new ArchiveImport(opened.fs, opened.io, syncEvery(opened), chunkBytes);
          const source = new ByteSource(input.chunks, (consumed) => bar.update(consumed));
          let stats: CopyStats;
          try {
            stats = await importer.run(new TarReader(source), dest);
          } catch (err) {
            // What was imported before the failure is complete: make it durable in the PNG too.
            rethrowAfter(err, () => opened.checkpoint(), 'the checkpoint after it');
          }
          opened.checkpoint();
          bar.stop();
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          const archiveBytes = source.offset;
          printResult(
            json,
            { map: mapPath, archive, ...stats, archiveBytes, seconds, side: opened.map.side },
            () => [
              `imported ${stats.files} files, ${stats.directories} directories, ${stats.symlinks} symlinks` +
                `${stats.hardlinks ? `, ${stats.hardlinks} hard links` : ''}` +
                `${stats.special ? `, ${stats.special} special files` : ''}: ${formatBytes(stats.bytes)} in ${seconds.toFixed(2)} s`,
            ],
          );
        } finally {
          bar.stop();
          opened.close();
        }
      },
    );
}
