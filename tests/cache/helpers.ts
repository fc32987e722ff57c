/** Shared bits of the cache tests: cluster contents with known CRCs, plans, a daemon without FUSE. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { ClusterSlab } from '../../src/actors/runtime/slab';
import { Supervisor } from '../../src/actors/runtime/supervisor';
import type { ActorHandle } from '../../src/actors/runtime/handle';
import type { RestartPolicy } from '../../src/actors/runtime/lifecycle';
import { createMap, sidecarPathFor } from '../../src/fs/open-map';
import { CLUSTER_SIZE } from '../../src/fs/types';
import type { CacheOps, CacheRun, CacheSegment } from '../../src/protocol/cache';
import type { JournalOps } from '../../src/protocol/journal';
import type { SchedulerOps } from '../../src/protocol/scheduler';
import type { CachedReadDeps } from '../../src/fuse/cached-read';

export const ROOT_DIR = path.resolve(__dirname, '..', '..');
export const actorModule = (name: string): string =>
  path.join(ROOT_DIR, 'src', 'actors', name, `${name}.worker`);

/** Compressible content that depends on `seed`: a text-like cluster. */
export function textCluster(seed: number): Buffer {
  const line = `cluster ${seed} of the cache tests: the quick brown fox jumps over the lazy dog ${seed % 97}\n`;
  return Buffer.from(line.repeat(Math.ceil(CLUSTER_SIZE / line.length)).slice(0, CLUSTER_SIZE));
}

/** Incompressible content. */
export function randomCluster(seed: number): Buffer {
  const b = Buffer.alloc(CLUSTER_SIZE);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < CLUSTER_SIZE; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

export function crcsOf(...clusters: Buffer[]): Uint8Array {
  const out = Buffer.alloc(clusters.length * 4);
  clusters.forEach((c, i) => out.writeUInt32LE(crc32(c), i * 4));
  return out;
}

export function segment(mapCluster: number, ...clusters: Buffer[]): CacheSegment {
  return { mapCluster, count: clusters.length, crcs: crcsOf(...clusters) };
}

export function run(at: number, mapCluster: number, clusters: Buffer[], ino = 2, fileCluster = 0): CacheRun {
  return { at, mapCluster, count: clusters.length, crcs: crcsOf(...clusters), ino, fileCluster };
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `imapfs-cache-${prefix}-`));
}

/** VmRSS of this process in bytes (workers included: they are threads). */
export function rss(): number {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
}

export interface Daemon extends CachedReadDeps {
  supervisor: Supervisor;
  cache: ActorHandle<CacheOps>;
  dir: string;
  map: string;
  files: Map<string, { ino: number; data: Buffer }>;
  stop(): Promise<void>;
}

/**
 * A map with the given files (written offline), then scheduler + journal + cache actors on it, as the
 * daemon runs them, without FUSE.
 */
export async function startDaemon(options: {
  files: Record<string, Buffer>;
  l1Bytes: number;
  l2Bytes: number;
  prefetch?: boolean;
  window?: number;
  /** io.readahead_bytes: 0 (the default here) leaves sequential read-ahead to the cache's prefetch. */
  readaheadBytes?: number;
  /** cache.prefetch.neighbour_clusters (default 64). */
  neighbour?: number;
  ioDelayMs?: number;
  dir?: string;
  /** The map's side in pixels (default 512). */
  side?: number;
  /** The journal's restart policy (tests that crash it often). */
  journalRestart?: Partial<RestartPolicy>;
}): Promise<Daemon> {
  const dir = options.dir ?? tempDir('daemon');
  const map = path.join(dir, 'map.png');
  const files = new Map<string, { ino: number; data: Buffer }>();
  if (!fs.existsSync(map)) {
    const opened = createMap(map, options.side ?? 512, { uid: 0, gid: 0 });
    try {
      for (const [name, data] of Object.entries(options.files)) {
        const inode = opened.fs.create(1, Buffer.from(name), 0o100644, { uid: 0, gid: 0, umask: 0o022 });
        opened.io.write(inode.ino, 0, data);
        files.set(name, { ino: inode.ino, data });
      }
      opened.checkpoint();
    } finally {
      opened.close();
    }
  } else {
    for (const [name, data] of Object.entries(options.files)) files.set(name, { ino: 0, data });
  }
  const readSlab = ClusterSlab.create({ id: 1, slotCount: 32, slotSize: 1 << 20 });
  const supervisor = new Supervisor({ slabs: [readSlab], startTimeoutMs: 60_000 });
  const scheduler = supervisor.add<SchedulerOps>({
    name: 'scheduler',
    module: actorModule('scheduler'),
    options: { mapPath: map, readOnly: false, ioDelayMs: options.ioDelayMs ?? 0 },
  });
  const journal = supervisor.add<JournalOps>({
    name: 'journal',
    module: actorModule('journal'),
    options: {
      sidecarPath: sidecarPathFor(map),
      enforcePermissions: false,
      growMailbox: null,
      durable: true,
      recoveryDone: recoveredFlag(),
    },
    ...(options.journalRestart ? { restart: options.journalRestart } : {}),
  });
  const cache = supervisor.add<CacheOps>({
    name: 'cache',
    module: actorModule('cache'),
    options: { l1Bytes: options.l1Bytes, l2Bytes: options.l2Bytes, warmPath: `${map}.cachewarm` },
  });
  await supervisor.start();
  return {
    supervisor,
    journal,
    scheduler,
    cache,
    readSlab,
    config: {
      cache: {
        l1_bytes: options.l1Bytes,
        l2_bytes: options.l2Bytes,
        l2_streamed: false,
        prefetch: {
          enabled: options.prefetch ?? true,
          window_clusters: options.window ?? 256,
          neighbour_clusters: options.neighbour ?? 64,
        },
      },
      io: {
        max_dirty_bytes: 64 << 20,
        chunk_bytes: 1 << 20,
        readahead_bytes: options.readaheadBytes ?? 0,
      },
    },
    dir,
    map,
    files,
    stop: () => supervisor.stopAll(),
  };
}

/** The map was opened (and recovered) above, before any actor: the journal may open its store at start. */
function recoveredFlag(): SharedArrayBuffer {
  const flag = new SharedArrayBuffer(4);
  Atomics.store(new Int32Array(flag), 0, 1);
  return flag;
}
