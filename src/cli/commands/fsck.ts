/**
 * `imapfs fsck MAP.png [--repair] [--json]`: the container (every chunk CRC, the zlib stream, the
 * superblock, imMD), the metadata (space accounting, names, link counts), every cluster's CRC-32, and
 * the metadata chunk against the sidecar. Exits 0 when clean, else with the worst problem's status.
 */
import type { Command } from 'commander';
import { checkClusterCrcs, checkMetadata, type FsckProblem, repairMetadata } from '../../fs/fsck';
import { type OpenedMap, openMap } from '../../fs/open-map';
import { MapContainer } from '../../map';
import { ERROR_TABLE, ImapError, isImapError } from '../../protocol/errors';
import { printResult } from '../output';
import { byteProgress, progressMode } from '../progress';

interface FsckOptions {
  json?: boolean;
  repair?: boolean;
}

/** Errors that mean "there is no map to check" rather than "the map is damaged". */
const NOT_CHECKABLE = new Set([
  'IMAP_E_MAP_MISSING',
  'IMAP_E_NOT_A_MAP',
  'IMAP_E_VERSION_TOO_NEW',
  'IMAP_E_MAP_LOCKED',
]);

export function registerFsck(program: Command): void {
  program
    .command('fsck')
    .description('verify the PNG container, the metadata and every checksum')
    .argument('<map>', 'the map file')
    .option('--repair', 'rebuild checksums, free space, link counts and the metadata chunk')
    .option('--json', 'print the result as JSON')
    .action((mapPath: string, opts: FsckOptions) => {
      const json = opts.json === true;
      let opened: OpenedMap;
      try {
        opened = openMap(mapPath, { grow: false });
      } catch (err) {
        if (!isImapError(err) || NOT_CHECKABLE.has(err.code)) throw err;
        // The map cannot be opened: list what the container scan finds, plus the reason.
        const report = MapContainer.verifyFile(mapPath);
        const problems: FsckProblem[] = [...report.problems];
        if (!problems.some((p) => p.code === err.code))
          problems.push({ code: err.code, where: err.detail ?? mapPath });
        finish(json, mapPath, problems, [], null);
        return;
      }
      const repairs: string[] = [];
      try {
        if (opened.report.recovered) repairs.push('checksums repaired after a crash (at open)');
        if (opened.report.sidecar === 'rebuilt')
          repairs.push(`sidecar rebuilt from the map (${opened.report.sidecarReason})`);
        if (opened.report.orphansRemoved)
          repairs.push(`${opened.report.orphansRemoved} orphan inodes removed`);
        let problems = runChecks(opened, json);
        if (opts.repair && problems.length > 0) {
          if (problems.some((p) => isContainerCode(p.code))) {
            // Damage found by a check may be anywhere: a full scan, not the intent log.
            const r = opened.map.repairChecksums(undefined, true);
            repairs.push(
              `container checksums rebuilt (${r.chunksFixed} chunks${r.adlerFixed ? ', Adler-32' : ''})`,
            );
          }
          const m = repairMetadata(opened.store);
          if (m.freeSpaceRebuilt) repairs.push('free space rebuilt from extents');
          if (m.nlinkFixed) repairs.push(`${m.nlinkFixed} link counts fixed`);
          const orphans = opened.fs.cleanOrphans();
          if (orphans) repairs.push(`${orphans} orphan inodes removed`);
          opened.checkpoint();
          repairs.push('metadata chunk rewritten');
          problems = runChecks(opened, json);
        }
        finish(json, mapPath, problems, repairs, opened);
      } finally {
        opened.close();
      }
    });
}

function runChecks(opened: OpenedMap, json: boolean): FsckProblem[] {
  const problems: FsckProblem[] = [...opened.map.verify().problems];
  problems.push(...checkMetadata(opened.store));
  const total = opened.store.usedClusters() * 4096;
  const bar = byteProgress('fsck: data checksums', total, progressMode(json));
  try {
    const io = {
      read: (first: number, count: number, out: Buffer, off: number) =>
        opened.map.readClusters(first, count, out, off),
      write: () => {
        throw new ImapError('IMAP_E_INTERNAL', 'fsck does not write data');
      },
    };
    problems.push(...checkClusterCrcs(opened.store, io, (done) => bar.update(done * 4096)));
  } finally {
    bar.stop();
  }
  const chunk = opened.compareMetadataChunk();
  if (chunk.state !== 'same') {
    problems.push({
      code: 'IMAP_E_CORRUPT_METADATA',
      where: `metadata chunk ${chunk.state}${chunk.detail ? `: ${chunk.detail}` : ''}`,
    });
  }
  return problems;
}

function isContainerCode(code: string): boolean {
  return [
    'IMAP_E_CORRUPT_CHUNK',
    'IMAP_E_CORRUPT_ZLIB',
    'IMAP_E_CORRUPT_HEADER',
    'IMAP_E_CORRUPT_SUPERBLOCK',
  ].includes(code);
}

function finish(
  json: boolean,
  mapPath: string,
  problems: FsckProblem[],
  repairs: string[],
  opened: OpenedMap | null,
): void {
  const clean = problems.length === 0;
  const data = {
    map: mapPath,
    clean,
    problems,
    repairs,
    generation: opened?.map.superblock.generation ?? null,
  };
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ ...data, ok: clean }, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}\n`,
    );
  } else {
    printResult(false, data, () => [
      ...repairs.map((r) => `repaired: ${r}`),
      ...problems.map((p) => `${p.code}: ${ERROR_TABLE[p.code].message}: ${p.where}`),
      clean ? `${mapPath}: clean` : `${mapPath}: ${problems.length} problem(s)`,
    ]);
  }
  if (!clean) {
    const exit = Math.max(...problems.map((p) => ERROR_TABLE[p.code].exit));
    if (!json)
      process.stderr.write(`  hint: ${ERROR_TABLE[problems[0]?.code ?? 'IMAP_E_CORRUPT_METADATA'].hint}\n`);
    process.exitCode = exit;
  }
}
