/**
 * The open flow every offline command shares (and the daemon's mount follows):
 *
 *   MapContainer.open ─▶ take MAP.png.lock ─▶ needsRecovery? repairChecksums
 *     ─▶ sidecar MAP.png.imapdb: same uuid and generation as the superblock? use it
 *                                 otherwise (missing, stale, foreign, unreadable): rebuild from imMD
 *     ─▶ reconcile geometry (a crash after growth) ─▶ allocator recovery, orphans
 *
 * Checkpoint order (crash-safe at every step):
 *   1. map.sync(), store.sync(): data, then the metadata pointing at it, durable
 *   2. release pending frees: the transactions that freed them are durable (step 1), and nothing
 *      reuses them before step 4 completes (one thread), so imMD(G) stays valid until replaced
 *   3. serialize the store with generation G+1
 *   4. map.checkpoint({G+1, image}): checksums + imMD + superblock(G+1) durable
 *      — a crash here leaves sidecar G vs map G+1: the sidecar is rebuilt from imMD(G+1), which
 *        holds exactly what the sidecar held
 *   5. store generation := G+1, store.sync()
 * Afterwards imMD's payload equals serializeStore(sidecar) byte for byte: that is how an open (and
 * fsck) tells whether the sidecar holds changes the map's copy lacks.
 */
import { existsSync, rmSync } from 'node:fs';
import { MapContainer, type ProgressFn, type RepairReport } from '../map';
import { ImapError, isImapError } from '../protocol/errors';
import type { Geometry } from './allocator';
import { FileSystem } from './filesystem';
import { FileSystemIO } from './filesystem-io';
import { type MapLock, acquireMapLock, borrowMapLock } from './map-lock';
import { rebuildStore, removeDb, serializeStore } from './metadata-image';
import { MetadataStore, type StoreInit } from './store';
import { CLUSTER_SIZE } from './types';

export function sidecarPathFor(mapPath: string): string {
  return `${mapPath}.imapdb`;
}

export type SidecarStatus = 'current' | 'rebuilt';

export interface OpenReport {
  /** The superblock said dirty: checksums were repaired. */
  recovered: RepairReport | null;
  sidecar: SidecarStatus;
  /** Why the sidecar was rebuilt, if it was. */
  sidecarReason: string | null;
  orphansRemoved: number;
}

/** Sidecar meta key of the last open that repaired anything (JSON of LastRecovery). */
export const LAST_RECOVERY_KEY = 'last_recovery';

export interface LastRecovery extends OpenReport {
  atMs: number;
}

/** The last recovery recorded in the sidecar, or null (none, or unreadable: it is only a report). */
export function lastRecovery(store: MetadataStore): LastRecovery | null {
  const row = store.allMeta().find((r) => r.key === LAST_RECOVERY_KEY);
  if (!row || typeof row.value !== 'string') return null;
  try {
    return JSON.parse(row.value) as LastRecovery;
  } catch {
    // Written by us as JSON; a damaged value only loses the report, never data.
    return null;
  }
}

export interface OpenMapOptions {
  /** Let the allocator grow the map when it is full (default true). */
  grow?: boolean;
  /**
   * This process holds MAP.png.lock already (the daemon's main thread took it before asking the
   * journal actor to recover): check that, and neither take nor release it here.
   */
  lockHeld?: boolean;
  /** Called during the checksum repair's full scan (bytes done, bytes in all). */
  onProgress?: ProgressFn;
}

export class OpenedMap {
  readonly fs: FileSystem;
  readonly io: FileSystemIO;

  constructor(
    readonly path: string,
    readonly map: MapContainer,
    public store: MetadataStore,
    private readonly lock: MapLock,
    readonly report: OpenReport,
    options: OpenMapOptions,
  ) {
    this.fs = new FileSystem(store, { grow: options.grow === false ? undefined : (n, c) => this.grow(n, c) });
    this.io = new FileSystemIO(this.fs, {
      read: (first, count, out, off) => map.readClusters(first, count, out, off),
      write: (first, data, off, count) => map.writeClusters(first, data, off, count),
    });
  }

  /** Folds everything into the PNG so it is a valid, self-contained image (see the file comment). */
  checkpoint(): void {
    this.sync();
    const next = this.store.generation + 1;
    const image = serializeStore(this.store, { generation: next });
    this.map.checkpoint({ generation: BigInt(next), payload: image });
    if (this.map.superblock.generation !== BigInt(next)) {
      throw new ImapError(
        'IMAP_E_SIDECAR_MISMATCH',
        `map generation ${this.map.superblock.generation} after checkpoint, sidecar ${next}`,
      );
    }
    this.store.transaction(() => this.store.setGeneration(next));
    this.store.sync();
  }

  /**
   * Compares the sidecar with the map's metadata chunk: 'same', 'differs' (the sidecar holds changes
   * not yet checkpointed, or one of them is damaged), 'missing' or 'damaged' (imMD unreadable).
   */
  compareMetadataChunk(): { state: 'same' | 'differs' | 'missing' | 'damaged'; detail: string | null } {
    let copy;
    try {
      copy = this.map.readMetadataChunk();
    } catch (err) {
      return { state: 'damaged', detail: err instanceof Error ? err.message : String(err) };
    }
    if (!copy) return { state: 'missing', detail: null };
    const mine = serializeStore(this.store);
    if (copy.generation === BigInt(this.store.generation) && mine.equals(copy.payload)) {
      return { state: 'same', detail: null };
    }
    return {
      state: 'differs',
      detail: `imMD generation ${copy.generation} (${copy.payload.length} bytes), sidecar generation ${this.store.generation} (${mine.length} bytes)`,
    };
  }

  /** The durable point between checkpoints: map data first, then the metadata that points at it. */
  sync(): void {
    this.map.sync();
    this.store.sync();
    this.fs.releasePending();
  }

  close(): void {
    try {
      this.store.close();
      this.map.close();
    } finally {
      this.lock.release();
    }
  }

  private grow(needed: number, current: number): Geometry {
    let side = this.map.side;
    const clustersOf = (s: number): number => (s * s * 4) / CLUSTER_SIZE;
    do side *= 2;
    while (clustersOf(side) - current < needed);
    this.map.grow(side);
    return { side: this.map.side, clusterCount: this.map.clusterCount };
  }
}

export function openMap(path: string, options: OpenMapOptions = {}): OpenedMap {
  const map = MapContainer.open(path);
  let lock: MapLock;
  try {
    lock = options.lockHeld ? borrowMapLock(path) : acquireMapLock(path);
  } catch (err) {
    map.close();
    throw err;
  }
  try {
    const recovered = map.needsRecovery ? map.repairChecksums(options.onProgress) : null;
    const { store, status, reason } = openSidecar(path, map);
    reconcileGeometry(store, map);
    const opened = new OpenedMap(
      path,
      map,
      store,
      lock,
      { recovered, sidecar: status, sidecarReason: reason, orphansRemoved: 0 },
      options,
    );
    opened.report.orphansRemoved = opened.fs.mountRecovery().orphans;
    if (recovered || status === 'rebuilt' || opened.report.orphansRemoved > 0) {
      // Kept in the sidecar so that `imapfs info` can tell later what the last recovery did, even
      // when it was a mount's (the daemon holds the lock while mounted).
      const record: LastRecovery = { atMs: Date.now(), ...opened.report };
      store.transaction(() => store.putMeta(LAST_RECOVERY_KEY, JSON.stringify(record)));
    }
    // After a crash the sidecar is ahead of imMD: fold it in now, so the PNG alone is complete again.
    if (recovered || opened.report.orphansRemoved > 0 || opened.compareMetadataChunk().state === 'differs') {
      opened.checkpoint();
    }
    return opened;
  } catch (err) {
    map.close();
    lock.release();
    throw err;
  }
}

/** mkfs: a new map and sidecar, with a root directory owned by `owner`, checkpointed. */
export function createMap(path: string, side: number, owner: { uid: number; gid: number }): OpenedMap {
  const map = MapContainer.create(path, { side });
  let lock: MapLock | undefined;
  try {
    lock = acquireMapLock(path);
    const sidecar = sidecarPathFor(path);
    removeDb(sidecar);
    const sb = map.superblock;
    const init: StoreInit = {
      uuid: sb.uuid,
      side: map.side,
      clusterCount: map.clusterCount,
      generation: Number(sb.generation),
    };
    const store = MetadataStore.create(sidecar, init);
    FileSystem.format(store, { uid: owner.uid, gid: owner.gid, mode: 0o755 });
    const report: OpenReport = {
      recovered: null,
      sidecar: 'current',
      sidecarReason: null,
      orphansRemoved: 0,
    };
    const opened = new OpenedMap(path, map, store, lock, report, {});
    opened.checkpoint();
    return opened;
  } catch (err) {
    map.close();
    lock?.release();
    throw err;
  }
}

/** Removes a map and everything beside it (mkfs --force). */
export function removeMapFiles(path: string): void {
  rmSync(path, { force: true });
  removeDb(sidecarPathFor(path));
  rmSync(`${path}.grow-tmp`, { force: true });
}

function openSidecar(
  path: string,
  map: MapContainer,
): { store: MetadataStore; status: SidecarStatus; reason: string | null } {
  const sidecar = sidecarPathFor(path);
  const sb = map.superblock;
  let reason = 'sidecar is missing';
  if (existsSync(sidecar)) {
    try {
      const store = MetadataStore.open(sidecar);
      const info = store.info;
      if (info.uuid === sb.uuid && BigInt(info.generation) === sb.generation) {
        return { store, status: 'current', reason: null };
      }
      reason =
        info.uuid !== sb.uuid
          ? `sidecar belongs to map ${info.uuid}`
          : `sidecar generation ${info.generation}, map ${sb.generation}`;
      store.close();
    } catch (err) {
      if (!isImapError(err) || err.code === 'IMAP_E_VERSION_TOO_NEW') throw err;
      reason = `sidecar unreadable: ${err.message}`;
    }
  }
  const copy = map.readMetadataChunk();
  if (!copy) {
    throw new ImapError(
      'IMAP_E_CORRUPT_METADATA',
      `${reason}, and the map has no metadata chunk to rebuild it from`,
    );
  }
  const store = rebuildStore(sidecar, copy.payload);
  if (store.info.uuid !== sb.uuid) {
    store.close();
    throw new ImapError(
      'IMAP_E_SIDECAR_MISMATCH',
      `metadata chunk has uuid ${store.info.uuid}, map ${sb.uuid}`,
    );
  }
  // imMD may be one generation ahead if a crash hit between writing it and the superblock.
  store.transaction(() => store.setGeneration(Number(sb.generation)));
  store.sync();
  return { store, status: 'rebuilt', reason };
}

function reconcileGeometry(store: MetadataStore, map: MapContainer): void {
  const known = store.info.clusterCount;
  if (map.clusterCount < known) {
    throw new ImapError(
      'IMAP_E_CORRUPT_METADATA',
      `sidecar expects ${known} clusters, map has ${map.clusterCount}`,
    );
  }
  if (map.clusterCount > known || store.info.side !== map.side) {
    // The map grew and the transaction that recorded it did not commit (a crash): add the space now.
    const fsForSpace = new FileSystem(store);
    fsForSpace.allocator.addSpace({ side: map.side, clusterCount: map.clusterCount });
    if (store.info.side !== map.side) store.transaction(() => store.setGeometry(map.side, map.clusterCount));
  }
}
