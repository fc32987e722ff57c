/**
 * Metadata consistency checks (the fs half of `imapfs fsck`; the container half is
 * MapContainer.verify). Each problem carries an error code from the table and says where.
 *
 *   space:   every extent inside the map; no cluster owned twice (live extents, free, pending,
 *            reserved); every cluster accounted for (free space = complement of what is owned)
 *   names:   dirents point to existing inodes of the recorded type, from directories; a directory
 *            has exactly one name; nlink = names (+ subdirectories for a directory); symlinks have
 *            targets; extents belong to regular files and lie within their size
 *   data:    every written cluster matches its CRC-32
 */
import { crc32 } from 'node:zlib';
import type { ErrorCode } from '../protocol/errors';
import type { ClusterIO } from './filesystem-io';
import { S_IFMT, isDir, isLnk, isReg } from './modes';
import type { MetadataStore } from './store';
import { CLUSTER_SIZE, EXTENT_UNWRITTEN, type Inode, ROOT_INO, type Run } from './types';

export interface FsckProblem {
  code: ErrorCode;
  where: string;
}

export interface FsckRepairs {
  freeSpaceRebuilt: boolean;
  nlinkFixed: number;
}

/** Space and namespace checks; no I/O on the map. */
export function checkMetadata(store: MetadataStore): FsckProblem[] {
  return [...checkSpace(store), ...checkNames(store)];
}

/** Reads every live written cluster in runs and compares CRC-32s. Calls onProgress(clusters done). */
export function checkClusterCrcs(
  store: MetadataStore,
  io: ClusterIO,
  onProgress?: (done: number, total: number) => void,
): FsckProblem[] {
  const problems: FsckProblem[] = [];
  const live = store.allExtents().filter((e) => e.deathGen === null && (e.flags & EXTENT_UNWRITTEN) === 0);
  const total = live.reduce((n, e) => n + e.length, 0);
  const batch = 256;
  const buf = Buffer.alloc(batch * CLUSTER_SIZE);
  let done = 0;
  for (const e of live) {
    if (e.firstCluster < 0 || e.firstCluster + e.length > store.info.clusterCount) continue; // reported above
    for (let at = 0; at < e.length; at += batch) {
      const n = Math.min(batch, e.length - at);
      io.read(e.firstCluster + at, n, buf, 0);
      for (let i = 0; i < n; i += 1) {
        const want = e.crcs.readUInt32LE((at + i) * 4);
        if (crc32(buf.subarray(i * CLUSTER_SIZE, (i + 1) * CLUSTER_SIZE)) !== want) {
          problems.push({
            code: 'IMAP_E_CORRUPT_CLUSTER',
            where: `ino ${e.ino} (${pathOf(store, e.ino)}) file cluster ${e.fileCluster + at + i}, map cluster ${e.firstCluster + at + i}`,
          });
        }
      }
      done += n;
      onProgress?.(done, total);
    }
  }
  return problems;
}

/** Rebuilds free space as the complement of what extents own, and fixes link counts. */
export function repairMetadata(store: MetadataStore): FsckRepairs {
  return store.transaction(() => {
    const owned = mergeRuns(
      store
        .allExtents()
        .filter((e) => e.firstCluster >= 0 && e.firstCluster + e.length <= store.info.clusterCount)
        .map((e) => ({ start: e.firstCluster, length: e.length })),
    );
    const before = JSON.stringify(store.allFree());
    store.db.prepare('DELETE FROM free_extents').run();
    store.db.prepare('DELETE FROM pending_free').run();
    store.db.prepare('DELETE FROM reserved').run();
    let at = 0;
    for (const run of [...owned, { start: store.info.clusterCount, length: 0 }]) {
      if (run.start > at) store.freeInsert({ start: at, length: run.start - at });
      at = Math.max(at, run.start + run.length);
    }
    let nlinkFixed = 0;
    const expected = expectedLinks(store);
    for (const inode of store.allInodes()) {
      const want = expected.get(inode.ino) ?? 0;
      if (want !== inode.nlink) {
        store.updateInode(inode.ino, { nlink: want });
        nlinkFixed += 1;
      }
    }
    return { freeSpaceRebuilt: before !== JSON.stringify(store.allFree()), nlinkFixed };
  });
}

function checkSpace(store: MetadataStore): FsckProblem[] {
  const problems: FsckProblem[] = [];
  const count = store.info.clusterCount;
  interface Owned extends Run {
    what: string;
  }
  const runs: Owned[] = [];
  for (const e of store.allExtents()) {
    const what = `extent ${e.id} of ino ${e.ino} (clusters ${e.firstCluster}+${e.length})`;
    if (e.firstCluster < 0 || e.firstCluster + e.length > count) {
      problems.push({
        code: 'IMAP_E_CORRUPT_METADATA',
        where: `${what} lies outside the map (${count} clusters)`,
      });
      continue;
    }
    if (e.crcs.length !== e.length * 4) {
      problems.push({ code: 'IMAP_E_CORRUPT_METADATA', where: `${what} has ${e.crcs.length / 4} CRCs` });
    }
    // Dead extents (kept for snapshots) legitimately share clusters with live ones.
    if (e.deathGen === null) runs.push({ start: e.firstCluster, length: e.length, what });
  }
  const space: [string, Run[]][] = [
    ['free', store.allFree()],
    ['pending free', store.allPending()],
    ['reserved', store.allReserved()],
  ];
  for (const [kind, list] of space) {
    for (const r of list) {
      if (r.start < 0 || r.start + r.length > count) {
        problems.push({
          code: 'IMAP_E_CORRUPT_METADATA',
          where: `${kind} run ${r.start}+${r.length} outside the map`,
        });
      }
      runs.push({ ...r, what: `${kind} run ${r.start}+${r.length}` });
    }
  }
  runs.sort((a, b) => a.start - b.start);
  let end = 0;
  let last: Owned | null = null;
  for (const r of runs) {
    if (last && r.start < end) {
      problems.push({ code: 'IMAP_E_CORRUPT_METADATA', where: `${r.what} overlaps ${last.what}` });
    } else if (r.start > end) {
      problems.push({
        code: 'IMAP_E_CORRUPT_METADATA',
        where: `clusters ${end}+${r.start - end} are leaked (neither owned nor free)`,
      });
    }
    if (r.start + r.length > end) {
      end = r.start + r.length;
      last = r;
    }
  }
  if (end < count) {
    problems.push({
      code: 'IMAP_E_CORRUPT_METADATA',
      where: `clusters ${end}+${count - end} are leaked (neither owned nor free)`,
    });
  }
  const free = store.allFree();
  for (let i = 1; i < free.length; i += 1) {
    const a = free[i - 1] as Run;
    const b = free[i] as Run;
    if (a.start + a.length === b.start) {
      problems.push({
        code: 'IMAP_E_CORRUPT_METADATA',
        where: `free runs ${a.start} and ${b.start} are not coalesced`,
      });
    }
  }
  return problems;
}

function checkNames(store: MetadataStore): FsckProblem[] {
  const problems: FsckProblem[] = [];
  const inodes = new Map<number, Inode>(store.allInodes().map((i) => [i.ino, i]));
  const bad = (where: string): void => {
    problems.push({ code: 'IMAP_E_CORRUPT_METADATA', where });
  };
  const root = inodes.get(ROOT_INO);
  if (!root || !isDir(root.mode)) bad('root directory (ino 1) is missing or not a directory');
  const names = new Map<number, number>();
  for (const d of store.allDirents()) {
    const parent = inodes.get(d.parent);
    const target = inodes.get(d.ino);
    const where = `entry ${JSON.stringify(d.name.toString('utf8'))} in ino ${d.parent}`;
    if (!parent || !isDir(parent.mode)) bad(`${where}: parent is not a directory`);
    if (!target) {
      bad(`${where}: points to missing ino ${d.ino}`);
      continue;
    }
    if ((target.mode & S_IFMT) !== d.type)
      bad(`${where}: type ${d.type.toString(8)} but ino ${d.ino} is ${(target.mode & S_IFMT).toString(8)}`);
    names.set(d.ino, (names.get(d.ino) ?? 0) + 1);
  }
  const expected = expectedLinks(store);
  const symlinks = new Set(store.allSymlinks().map((s) => s.ino));
  for (const inode of inodes.values()) {
    const n = names.get(inode.ino) ?? 0;
    if (inode.ino !== ROOT_INO && n === 0) {
      bad(`ino ${inode.ino} has no name (orphan${inode.nlink === 0 ? ', nlink 0' : ''})`);
    }
    if (isDir(inode.mode) && inode.ino !== ROOT_INO && n > 1)
      bad(`directory ino ${inode.ino} has ${n} names`);
    const want = expected.get(inode.ino) ?? 0;
    if (inode.nlink !== want)
      bad(`ino ${inode.ino} (${pathOf(store, inode.ino)}): nlink ${inode.nlink}, expected ${want}`);
    if (isLnk(inode.mode) && !symlinks.has(inode.ino)) bad(`symlink ino ${inode.ino} has no target`);
  }
  for (const e of store.allExtents()) {
    const inode = inodes.get(e.ino);
    if (!inode || !isReg(inode.mode)) {
      bad(`extent ${e.id} belongs to ino ${e.ino}, which is not a regular file`);
      continue;
    }
    if (e.deathGen === null && e.fileCluster + e.length > Math.ceil(inode.size / CLUSTER_SIZE)) {
      bad(`extent ${e.id} of ino ${e.ino} maps file clusters past the end of the file`);
    }
  }
  for (const s of symlinks) if (!inodes.has(s)) bad(`symlink target row for missing ino ${s}`);
  return problems;
}

/** nlink each inode should have: its names, plus for a directory "." and one per subdirectory. */
function expectedLinks(store: MetadataStore): Map<number, number> {
  const modes = new Map(store.allInodes().map((i) => [i.ino, i.mode]));
  const links = new Map<number, number>();
  const add = (ino: number, n: number): void => {
    links.set(ino, (links.get(ino) ?? 0) + n);
  };
  add(ROOT_INO, 2);
  for (const d of store.allDirents()) {
    const mode = modes.get(d.ino);
    if (mode === undefined) continue;
    if (isDir(mode)) {
      add(d.ino, 2);
      add(d.parent, 1);
    } else {
      add(d.ino, 1);
    }
  }
  return links;
}

/** A path for messages: first name found walking up, or "ino N". */
export function pathOf(store: MetadataStore, ino: number): string {
  const parts: string[] = [];
  let at = ino;
  for (let depth = 0; depth < 4096 && at !== ROOT_INO; depth += 1) {
    const d = store.direntsOf(at)[0];
    if (!d) return parts.length === 0 ? `ino ${ino}` : `?/${parts.reverse().join('/')}`;
    parts.push(d.name.toString('utf8'));
    at = d.parent;
  }
  return `/${parts.reverse().join('/')}`;
}

function mergeRuns(runs: Run[]): Run[] {
  const sorted = [...runs].sort((a, b) => a.start - b.start);
  const out: Run[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.start + last.length) {
      last.length = Math.max(last.length, r.start + r.length - last.start);
    } else {
      out.push({ ...r });
    }
  }
  return out;
}
