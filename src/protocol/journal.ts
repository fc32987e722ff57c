/**
 * The journal actor's protocol. The journal owns the metadata store (SQLite sidecar) and runs the
 * POSIX layer (src/fs) in its own thread; every metadata op and every step of the data path that
 * touches metadata (plan a read, prepare and commit a write) is one of these messages.
 *
 * Names, targets and xattr values are bytes. They cross the thread boundary as Uint8Array (structured
 * clone drops the Buffer prototype); the actor wraps them back without copying.
 */
import type { ReadPlan, TruncatePlan, WritePlan } from '../fs/data-path';
import type { OpenReport } from '../fs/open-map';
import type { MapSegment } from '../fs/extent-map';
import type { DirEntry, SetAttr, StatFs } from '../fs/filesystem';
import type { Inode } from '../fs/types';

export interface FsCaller {
  uid: number;
  gid: number;
  umask: number;
  groups?: number[];
}

type Bytes = Uint8Array;

/** What the journal's `recover` did: openMap's report, how long it took, which delivery it was. */
export interface RecoveryReport extends OpenReport {
  /** Duration of the open flow in this worker, in ms (`imapfs stats`: `recovery.ms`). */
  ms: number;
  /** Delivery of the request that completed it: > 1 when earlier workers crashed or hung on it. */
  attempt: number;
}

export interface JournalOps {
  /**
   * The mount's recovery, run in the journal's thread before its store opens and before any other
   * actor starts (docs/journal.md, "Recovery on mount"): openMap's whole flow on `mapPath` (checksum
   * repair of a dirty container, sidecar check or rebuild, geometry, allocator recovery, orphans,
   * checkpoint), with MAP.png.lock already held by the daemon's main thread. Then the journal opens
   * its store. Idempotent: the repairs are rewrites of computed checksums and SQLite transactions, so
   * a worker that dies part way leaves work the next delivery finishes. Every other op fails with
   * IMAP_E_INTERNAL until this one succeeded once in the mount.
   */
  recover: { payload: { mapPath: string; grow: boolean }; result: RecoveryReport };
  lookup: { payload: { parent: number; name: Bytes; caller: FsCaller }; result: Inode };
  getattr: { payload: { ino: number }; result: Inode };
  setattr: { payload: { ino: number; attr: SetAttr; caller: FsCaller }; result: Inode };
  checkTruncate: { payload: { ino: number; caller: FsCaller }; result: null };
  readlink: { payload: { ino: number }; result: Bytes };
  readdir: { payload: { ino: number; cookie: number; limit: number }; result: DirEntry[] };
  mknod: {
    payload: { parent: number; name: Bytes; mode: number; rdev: number; caller: FsCaller };
    result: Inode;
  };
  /** `open`: the new file is also opened (one round trip and one transaction for FUSE create). */
  create: {
    payload: { parent: number; name: Bytes; mode: number; caller: FsCaller; open?: boolean };
    result: Inode;
  };
  mkdir: { payload: { parent: number; name: Bytes; mode: number; caller: FsCaller }; result: Inode };
  symlink: { payload: { parent: number; name: Bytes; target: Bytes; caller: FsCaller }; result: Inode };
  link: { payload: { ino: number; newParent: number; newName: Bytes; caller: FsCaller }; result: Inode };
  unlink: { payload: { parent: number; name: Bytes; caller: FsCaller }; result: null };
  rmdir: { payload: { parent: number; name: Bytes; caller: FsCaller }; result: null };
  rename: {
    payload: {
      parent: number;
      name: Bytes;
      newParent: number;
      newName: Bytes;
      flags: number;
      caller: FsCaller;
    };
    result: null;
  };
  access: { payload: { ino: number; mask: number; caller: FsCaller }; result: null };
  setxattr: {
    payload: { ino: number; name: Bytes; value: Bytes; flags: number; caller: FsCaller };
    result: null;
  };
  getxattr: { payload: { ino: number; name: Bytes; size: number }; result: Bytes };
  listxattr: { payload: { ino: number; size: number }; result: Bytes };
  removexattr: { payload: { ino: number; name: Bytes; caller: FsCaller }; result: null };
  /**
   * Counts an open of `ino`. With `caller`, first checks the permission the open flags ask for
   * (O_RDONLY → read, O_WRONLY → write, O_RDWR → both; O_TRUNC → write); without, no check (an
   * internal open, e.g. of a file just created by its caller).
   */
  open: { payload: { ino: number; flags?: number; caller?: FsCaller }; result: Inode };
  /** Checks that `caller` may list the directory `ino` (read permission). */
  opendir: { payload: { ino: number; caller: FsCaller }; result: null };
  release: { payload: { ino: number }; result: null };
  statfs: { payload: Record<string, never>; result: StatFs };
  fallocate: { payload: { ino: number; offset: number; length: number; keepSize: boolean }; result: null };
  planRead: { payload: { ino: number; offset: number; length: number }; result: ReadPlan };
  /**
   * The file data stored in map clusters [first, first + count): live, written extents clipped to the
   * range, in map cluster order, from at most `limit` extents (default 256). Neighbour prefetch uses
   * it to read the small files stored next to one just read (docs/cache.md).
   */
  mapSegments: { payload: { first: number; count: number; limit?: number }; result: MapSegment[] };
  /**
   * `near`: the map cluster to allocate from when the file's extent before `offset` is not yet
   * committed (a pipelined writer passes the end of the run it prepared just before).
   */
  prepareWrite: {
    payload: { ino: number; offset: number; length: number; near?: number };
    result: WritePlan;
  };
  /** Idempotent: committing a plan whose runs are already live is a no-op. */
  commitWrite: { payload: { plan: WritePlan; crcs: Bytes; mtimeNs: bigint }; result: Inode };
  abortWrite: { payload: { plan: WritePlan }; result: null };
  prepareTruncate: { payload: { ino: number; size: number }; result: TruncatePlan };
  commitTruncate: { payload: { plan: TruncatePlan; tailCrc: Bytes | null }; result: Inode };
  /** Makes every committed transaction durable, then releases clusters freed by them. */
  sync: { payload: Record<string, never>; result: { released: number } };
  /** The whole store serialized with generation `generation` (the map's imMD payload). */
  exportMetadata: { payload: { generation: number }; result: Bytes };
  /** The checkpoint with this generation is durable in the map. */
  setGeneration: { payload: { generation: number }; result: null };
  /** The map grew (done by the scheduler): the allocator gets the new clusters. */
  mapGrown: { payload: { side: number; clusterCount: number }; result: null };
  info: {
    payload: Record<string, never>;
    result: { generation: number; files: number; usedClusters: number; clusterCount: number; side: number };
  };
}
