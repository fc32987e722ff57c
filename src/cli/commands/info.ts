/** `imapfs info MAP.png [--json]`: geometry, usage, generation, health. */
import type { Command } from 'commander';
import { lastRecovery, openMap } from '../../fs/open-map';
import { CLUSTER_SIZE } from '../../fs/types';
import { MapContainer } from '../../map';
import { printResult } from '../output';
import { formatBytes } from '../size';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('show geometry, usage, generation and health of a map')
    .argument('<map>', 'the map file')
    .option('--json', 'print the result as JSON')
    .action((mapPath: string, opts: { json?: boolean }) => {
      // Peek at the state before the open flow repairs a crashed map.
      const peek = MapContainer.open(mapPath, { readOnly: true });
      const stateAtOpen = peek.superblock.state;
      peek.close();
      const opened = openMap(mapPath);
      try {
        const sb = opened.map.superblock;
        const store = opened.store;
        const used = store.usedClusters() * CLUSTER_SIZE;
        const free = store.freeTotal() * CLUSTER_SIZE;
        const pending = store.allPending().reduce((n, r) => n + r.length, 0) * CLUSTER_SIZE;
        const info = {
          map: mapPath,
          formatVersion: sb.formatVersion,
          uuid: sb.uuid,
          side: opened.map.side,
          clusterSize: CLUSTER_SIZE,
          clusters: opened.map.clusterCount,
          capacityBytes: opened.map.clusterCount * CLUSTER_SIZE,
          usedBytes: used,
          freeBytes: free,
          pendingFreeBytes: pending,
          files: store.countInodes(),
          generation: sb.generation,
          state: stateAtOpen === 'dirty' ? 'recovered' : sb.state,
          sidecar: opened.report.sidecar,
          sidecarReason: opened.report.sidecarReason,
          schemaVersion: store.info.schemaVersion,
          orphansRemoved: opened.report.orphansRemoved,
          /** What this open's crash recovery did (null when the map was clean). */
          recovery: opened.report.recovered,
          /** The last open that repaired anything, this one or an earlier mount's (from the sidecar). */
          lastRecovery: lastRecovery(store),
          intentLog: opened.map.intentStatus.inUse
            ? 'in use'
            : `not in use (${opened.map.intentStatus.reason})`,
        };
        const rec = info.recovery;
        const last = info.lastRecovery;
        printResult(opts.json === true, info, () => [
          `map          ${mapPath}`,
          `format       v${info.formatVersion}, schema v${info.schemaVersion}`,
          `uuid         ${info.uuid}`,
          `geometry     ${info.side}×${info.side} pixels, ${info.clusters} clusters of ${CLUSTER_SIZE} bytes`,
          `capacity     ${formatBytes(info.capacityBytes)}`,
          `used         ${formatBytes(used)} (${((100 * used) / Math.max(1, info.capacityBytes)).toFixed(1)}%)`,
          `free         ${formatBytes(free)}${pending ? ` (+${formatBytes(pending)} pending)` : ''}`,
          `files        ${info.files}`,
          `generation   ${sb.generation}`,
          `state        ${info.state}${info.state === 'recovered' ? ' (checksums repaired after a crash)' : ''}`,
          ...(rec
            ? [
                `recovery     ${rec.scope === 'intents' ? 'from the intent log' : 'full scan'}: ${rec.blocksScanned} of ${rec.blockCount} blocks read, ${rec.chunksFixed} chunks fixed${rec.adlerFixed ? ', Adler-32 fixed' : ''}${rec.metadataDropped ? ', torn metadata copy dropped' : ''}`,
              ]
            : []),
          `intent log   ${info.intentLog}`,
          ...(last
            ? [
                `last repair  ${new Date(last.atMs).toISOString()}: ${
                  last.recovered
                    ? `checksums (${last.recovered.scope === 'intents' ? 'intent log' : 'full scan'}, ${last.recovered.blocksScanned} of ${last.recovered.blockCount} blocks, ${last.recovered.chunksFixed} chunks fixed)`
                    : 'no checksum repair'
                }, sidecar ${last.sidecar}, ${last.orphansRemoved} orphans removed`,
              ]
            : []),
          `sidecar      ${info.sidecar}${info.sidecarReason ? ` (${info.sidecarReason})` : ''}`,
        ]);
      } finally {
        opened.close();
      }
    });
}
