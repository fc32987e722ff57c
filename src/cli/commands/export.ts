/**
 * `imapfs export MAP.png [SRC] [FILE|-]` (or `-o FILE`): the tree at SRC as a POSIX pax archive, to a file or to
 * stdout (offline; the map is only read). With the archive on stdout, the result (and any error)
 * goes to stderr. A failed export removes its partial archive file.
 */
import type { Command } from 'commander';
import { openMap } from '../../fs/open-map';
import { ImapError } from '../../protocol/errors';
import { ArchiveExport, type ExportStats, mapTreeBytes } from '../archive/export-tree';
import { openArchiveOutput } from '../archive/streams';
import { TarWriter } from '../archive/tar-writer';
import { printResult, stdoutCarriesData } from '../output';
import { byteProgress, progressMode } from '../progress';
import { rethrowAfter } from '../report';
import { chunkSizeOption, formatBytes, parseChunkSize } from '../size';

interface ExportOptions {
  json?: boolean;
  output?: string;
  chunkSize: string;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write a file or directory tree of the map as a tar (pax) archive')
    .argument('<map>', 'the map file')
    .argument('[src]', 'a path inside the map', '/')
    .argument('[archive]', 'the archive file, or - for stdout (the same as -o)')
    .option('-o, --output <file>', 'the archive file, or - for stdout (the default)')
    .option('--json', 'print the result as JSON')
    .addOption(chunkSizeOption())
    .action(async (mapPath: string, src: string, file: string | undefined, opts: ExportOptions) => {
      const json = opts.json === true;
      const chunkBytes = parseChunkSize(opts.chunkSize);
      if (file !== undefined && opts.output !== undefined && file !== opts.output) {
        throw new ImapError('IMAP_E_USAGE', `two archives named: ${file} and -o ${opts.output}`);
      }
      const archive = file ?? opts.output ?? '-';
      if (archive === '-') stdoutCarriesData();
      const opened = openMap(mapPath, { grow: false });
      const started = process.hrtime.bigint();
      try {
        const mode = progressMode(json);
        const root = opened.fs.resolve(src);
        const total = mode === 'off' ? 0 : mapTreeBytes(opened.fs, root);
        // Opened once SRC is known to exist, so that a bad SRC leaves no empty archive file behind.
        const output = openArchiveOutput(archive);
        const bar = byteProgress('export', total, mode);
        const writer = new TarWriter((bytes) => output.write(bytes));
        let stats: ExportStats;
        try {
          stats = await new ArchiveExport(
            opened.fs,
            opened.io,
            writer,
            (bytes) => bar.update(bytes),
            chunkBytes,
          ).run(src);
          await output.close();
        } catch (err) {
          rethrowAfter(err, () => output.abort(), 'removing the partial archive');
        } finally {
          bar.stop();
        }
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        printResult(json, { map: mapPath, archive, ...stats, archiveBytes: writer.bytes, seconds }, () => [
          `exported ${stats.files} files, ${stats.directories} directories, ${stats.symlinks} symlinks` +
            `${stats.hardlinks ? `, ${stats.hardlinks} hard links` : ''}` +
            `${stats.special ? `, ${stats.special} special files` : ''}` +
            `${stats.skipped ? ` (${stats.skipped} sockets skipped)` : ''}: ${formatBytes(stats.bytes)} in ${seconds.toFixed(2)} s`,
        ]);
      } finally {
        opened.close();
      }
    });
}
