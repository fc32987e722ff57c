/**
 * MetadataStore: the SQLite sidecar (`MAP.png.imapdb`, WAL mode) behind every metadata operation.
 *
 * Ownership: one MetadataStore belongs to one thread (the CLI process, or the daemon's journal actor).
 * The API is synchronous and every statement is prepared once.
 *
 * Durability: commits run with `synchronous=NORMAL` by default, so a commit costs no fsync and
 * consecutive transactions are grouped. Two durable points: `syncWal()` (an fsync's: fdatasync of the
 * WAL file, which holds every committed frame) and `sync()` (a checkpoint's: a PASSIVE checkpoint,
 * which fsyncs the WAL, folds it into the database file and fsyncs that). Automatic checkpoints are
 * off, so the WAL reaches the disk only when the owner says so: after the map's data is on disk
 * (ordered, copy-on-write writes; DESIGN.md §4). `synchronous: 'FULL'` makes every commit durable on
 * its own.
 */
import { closeSync, fdatasyncSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ImapError, fromSystemError } from '../protocol/errors';
import { MIGRATIONS, SCHEMA_VERSION } from './schema';
import type { Dirent, Extent, Inode, MetaInfo, NewInode, Run, Snapshot } from './types';

type Db = Database.Database;
type Stmt = Database.Statement;

export interface StoreOptions {
  synchronous?: 'FULL' | 'NORMAL';
  readOnly?: boolean;
}

export interface StoreInit {
  uuid: string;
  side: number;
  clusterCount: number;
  generation?: number;
}

/** First readdir cookie of a real entry; 1 and 2 are "." and "..". */
export const FIRST_COOKIE = 3;

interface RawInode {
  ino: bigint;
  mode: bigint;
  uid: bigint;
  gid: bigint;
  nlink: bigint;
  size: bigint;
  rdev: bigint;
  flags: bigint;
  atime_ns: bigint;
  mtime_ns: bigint;
  ctime_ns: bigint;
  btime_ns: bigint;
  generation: bigint;
}

interface RawExtent {
  id: number;
  ino: number;
  file_cluster: number;
  first_cluster: number;
  length: number;
  birth_gen: number;
  death_gen: number | null;
  flags: number;
  crcs: Buffer;
}

function toInode(r: RawInode): Inode {
  return {
    ino: Number(r.ino),
    mode: Number(r.mode),
    uid: Number(r.uid),
    gid: Number(r.gid),
    nlink: Number(r.nlink),
    size: Number(r.size),
    rdev: Number(r.rdev),
    flags: Number(r.flags),
    atimeNs: r.atime_ns,
    mtimeNs: r.mtime_ns,
    ctimeNs: r.ctime_ns,
    btimeNs: r.btime_ns,
    generation: Number(r.generation),
  };
}

function toExtent(r: RawExtent): Extent {
  return {
    id: r.id,
    ino: r.ino,
    fileCluster: r.file_cluster,
    firstCluster: r.first_cluster,
    length: r.length,
    birthGen: r.birth_gen,
    deathGen: r.death_gen,
    flags: r.flags,
    crcs: r.crcs,
  };
}

/** Columns an inode update may change (ino and generation never change). */
export type InodePatch = Partial<Omit<Inode, 'ino' | 'generation'>>;

const INODE_COLUMNS: Record<keyof InodePatch, string> = {
  mode: 'mode',
  uid: 'uid',
  gid: 'gid',
  nlink: 'nlink',
  size: 'size',
  rdev: 'rdev',
  flags: 'flags',
  atimeNs: 'atime_ns',
  mtimeNs: 'mtime_ns',
  ctimeNs: 'ctime_ns',
  btimeNs: 'btime_ns',
};

export class MetadataStore {
  readonly path: string;
  readonly db: Db;
  private readonly s: ReturnType<typeof prepareStatements>;
  private readonly patchCache = new Map<string, Stmt>();
  private meta: MetaInfo;
  /** The WAL file, opened on the first syncWal (it exists once something was committed). */
  private walFd: number | null = null;

  private constructor(path: string, db: Db) {
    this.path = path;
    this.db = db;
    this.s = prepareStatements(db);
    this.meta = this.readMeta();
  }

  /** Creates a new, empty store (root directory included) at `path`; fails if the file exists. */
  static create(path: string, init: StoreInit, options: StoreOptions = {}): MetadataStore {
    const db = openDb(path, options, true);
    try {
      migrate(db);
      const put = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)');
      db.transaction(() => {
        put.run('uuid', init.uuid);
        put.run('generation', metaValue(init.generation ?? 1));
        put.run('side', metaValue(init.side));
        put.run('cluster_count', metaValue(init.clusterCount));
        put.run('next_cookie', metaValue(FIRST_COOKIE));
        if (init.clusterCount > 0) {
          db.prepare('INSERT INTO free_extents(start, length) VALUES (0, ?)').run(init.clusterCount);
        }
      })();
    } catch (err) {
      db.close();
      throw err;
    }
    return new MetadataStore(path, db);
  }

  /** Opens an existing store, upgrading its schema if it is older. */
  static open(path: string, options: StoreOptions = {}): MetadataStore {
    let db: Db | undefined;
    try {
      db = openDb(path, options, false);
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new ImapError(
          'IMAP_E_VERSION_TOO_NEW',
          `sidecar schema ${version} > ${SCHEMA_VERSION}: ${path}`,
        );
      }
      if (version === 0) throw new ImapError('IMAP_E_CORRUPT_METADATA', `sidecar has no schema: ${path}`);
      if (!options.readOnly) migrate(db);
      return new MetadataStore(path, db);
    } catch (err) {
      if (db?.open) db.close();
      if (err instanceof ImapError) throw err;
      throw new ImapError('IMAP_E_CORRUPT_METADATA', `cannot read sidecar ${path}: ${String(err)}`, {
        cause: err,
      });
    }
  }

  // ---- transactions and durability ------------------------------------------------------------

  /** Runs fn in one transaction (nested calls become savepoints). Throwing rolls it back. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  /** The durable point: every transaction committed so far survives a power loss after this returns. */
  sync(): void {
    const [row] = this.db.pragma('wal_checkpoint(PASSIVE)') as { busy: number }[];
    if (row && row.busy !== 0) {
      // Another connection holds a read lock; a FULL commit still fsyncs the WAL up to here.
      this.db.pragma('synchronous = FULL');
      this.transaction(() => this.s.metaPut.run('last_sync_ns', metaValue(Date.now())));
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /**
   * The durable point of an fsync, without the cost of a checkpoint: every committed frame is in the
   * WAL file, so making that file durable makes every transaction committed so far survive a power
   * loss (SQLite recovers them from the WAL at the next open). The WAL keeps growing until sync().
   */
  syncWal(): void {
    if (this.walFd === null) {
      try {
        this.walFd = openSync(`${this.db.name}-wal`, 'r');
      } catch (err) {
        // No WAL yet (nothing committed in WAL mode) or not WAL mode: the checkpoint path is right.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.sync();
        throw fromSystemError(err, `opening ${this.db.name}-wal`);
      }
    }
    try {
      fdatasyncSync(this.walFd);
    } catch (err) {
      throw fromSystemError(err, `fdatasync ${this.db.name}-wal`);
    }
  }

  close(): void {
    if (this.walFd !== null) {
      closeSync(this.walFd);
      this.walFd = null;
    }
    if (this.db.open) this.db.close();
  }

  // ---- meta ------------------------------------------------------------------------------------

  get info(): Readonly<MetaInfo> {
    return this.meta;
  }

  get generation(): number {
    return this.meta.generation;
  }

  setGeneration(generation: number): void {
    this.s.metaPut.run('generation', metaValue(generation));
    this.meta = { ...this.meta, generation };
  }

  setGeometry(side: number, clusterCount: number): void {
    this.s.metaPut.run('side', metaValue(side));
    this.s.metaPut.run('cluster_count', metaValue(clusterCount));
    this.meta = { ...this.meta, side, clusterCount };
  }

  /** Allocates the next readdir cookie (global, increasing: unique per directory as a consequence). */
  nextCookie(): number {
    const row = this.s.cookieBump.get() as { value: number };
    return row.value - 1;
  }

  private readMeta(): MetaInfo {
    const rows = this.s.metaAll.all() as { key: string; value: string | number }[];
    const m = new Map(rows.map((r) => [r.key, r.value]));
    const num = (k: string): number => {
      const v = m.get(k);
      if (typeof v !== 'number') throw new ImapError('IMAP_E_CORRUPT_METADATA', `meta.${k} missing`);
      return v;
    };
    const uuid = m.get('uuid');
    if (typeof uuid !== 'string') throw new ImapError('IMAP_E_CORRUPT_METADATA', 'meta.uuid missing');
    return {
      uuid,
      generation: num('generation'),
      schemaVersion: this.db.pragma('user_version', { simple: true }) as number,
      side: num('side'),
      clusterCount: num('cluster_count'),
    };
  }

  // ---- inodes ----------------------------------------------------------------------------------

  insertInode(i: NewInode): number {
    const r = this.s.inodeInsert.run(...inodeColumns(i));
    return Number(r.lastInsertRowid);
  }

  /** Inserts an inode with a given number (root at mkfs, rebuild from the map's metadata chunk). */
  insertInodeWithIno(i: Inode): void {
    this.s.inodeInsertIno.run(i.ino, ...inodeColumns(i));
  }

  getInode(ino: number): Inode | undefined {
    const r = this.s.inodeGet.get(ino) as RawInode | undefined;
    return r ? toInode(r) : undefined;
  }

  updateInode(ino: number, patch: InodePatch): void {
    const keys = (Object.keys(patch) as (keyof InodePatch)[]).filter((k) => patch[k] !== undefined).sort();
    if (keys.length === 0) return;
    const sig = keys.join(',');
    let stmt = this.patchCache.get(sig);
    if (!stmt) {
      const sets = keys.map((k) => `${INODE_COLUMNS[k]} = ?`).join(', ');
      stmt = this.db.prepare(`UPDATE inodes SET ${sets} WHERE ino = ?`);
      this.patchCache.set(sig, stmt);
    }
    stmt.run(...keys.map((k) => patch[k]), ino);
  }

  deleteInode(ino: number): void {
    this.s.symlinkDelete.run(ino);
    this.s.xattrDeleteAll.run(ino);
    this.s.inodeDelete.run(ino);
  }

  orphans(): number[] {
    return (this.s.orphans.all() as { ino: number }[]).map((r) => r.ino);
  }

  allInodes(): Inode[] {
    return (this.s.inodeAll.all() as RawInode[]).map(toInode);
  }

  countInodes(): number {
    return (this.s.inodeCount.get() as { n: number }).n;
  }

  // ---- dirents ---------------------------------------------------------------------------------

  lookup(parent: number, name: Buffer): Dirent | undefined {
    return this.s.direntGet.get(parent, name) as Dirent | undefined;
  }

  insertDirent(parent: number, name: Buffer, ino: number, type: number): number {
    const cookie = this.nextCookie();
    this.s.direntInsert.run(parent, name, ino, type, cookie);
    return cookie;
  }

  /** Inserts an entry with its original cookie (rebuild from the metadata chunk). */
  insertDirentRaw(d: Dirent): void {
    this.s.direntInsert.run(d.parent, d.name, d.ino, d.type, d.cookie);
  }

  /** Points an existing entry at another inode, keeping its cookie (rename over an existing name). */
  retargetDirent(parent: number, name: Buffer, ino: number, type: number): void {
    this.s.direntRetarget.run(ino, type, parent, name);
  }

  deleteDirent(parent: number, name: Buffer): void {
    this.s.direntDelete.run(parent, name);
  }

  /** Entries of `parent` with cookie > after, in cookie order. */
  listDirents(parent: number, after: number, limit: number): Dirent[] {
    return this.s.direntList.all(parent, after, limit) as Dirent[];
  }

  hasDirents(parent: number): boolean {
    return this.s.direntAny.get(parent) !== undefined;
  }

  /** Every name linking to `ino` (a hard-linked file has several). */
  direntsOf(ino: number): Dirent[] {
    return this.s.direntsOf.all(ino) as Dirent[];
  }

  allDirents(): Dirent[] {
    return this.s.direntAll.all() as Dirent[];
  }

  // ---- symlinks --------------------------------------------------------------------------------

  setSymlink(ino: number, target: Buffer): void {
    this.s.symlinkPut.run(ino, target);
  }

  getSymlink(ino: number): Buffer | undefined {
    return (this.s.symlinkGet.get(ino) as { target: Buffer } | undefined)?.target;
  }

  allSymlinks(): { ino: number; target: Buffer }[] {
    return this.s.symlinkAll.all() as { ino: number; target: Buffer }[];
  }

  // ---- xattrs ----------------------------------------------------------------------------------

  getXattr(ino: number, name: Buffer): Buffer | undefined {
    return (this.s.xattrGet.get(ino, name) as { value: Buffer } | undefined)?.value;
  }

  putXattr(ino: number, name: Buffer, value: Buffer): void {
    this.s.xattrPut.run(ino, name, value);
  }

  deleteXattr(ino: number, name: Buffer): boolean {
    return this.s.xattrDelete.run(ino, name).changes > 0;
  }

  listXattrs(ino: number): Buffer[] {
    return (this.s.xattrList.all(ino) as { name: Buffer }[]).map((r) => r.name);
  }

  allXattrs(): { ino: number; name: Buffer; value: Buffer }[] {
    return this.s.xattrAll.all() as { ino: number; name: Buffer; value: Buffer }[];
  }

  // ---- extents ---------------------------------------------------------------------------------

  /** Live extents of `ino` overlapping file clusters [from, to), in file order. */
  liveExtents(ino: number, from = 0, to = Number.MAX_SAFE_INTEGER): Extent[] {
    return (this.s.extentsRange.all(ino, to, from) as RawExtent[]).map(toExtent);
  }

  /** The live extent with the highest file cluster below `before` (the one an append extends). */
  extentBefore(ino: number, before: number): Extent | undefined {
    const r = this.s.extentBefore.get(ino, before) as RawExtent | undefined;
    return r ? toExtent(r) : undefined;
  }

  insertExtent(e: Omit<Extent, 'id'>): number {
    const r = this.s.extentInsert.run(
      e.ino,
      e.fileCluster,
      e.firstCluster,
      e.length,
      e.birthGen,
      e.deathGen,
      e.flags,
      e.crcs,
    );
    return Number(r.lastInsertRowid);
  }

  /** Changes an extent's coverage in place (trim or merge) together with its CRC list. */
  resizeExtent(id: number, fileCluster: number, firstCluster: number, length: number, crcs: Buffer): void {
    this.s.extentResize.run(fileCluster, firstCluster, length, crcs, id);
  }

  killExtent(id: number, deathGen: number): void {
    this.s.extentKill.run(deathGen, id);
  }

  deleteExtent(id: number): void {
    this.s.extentDelete.run(id);
  }

  allExtents(): Extent[] {
    return (this.s.extentAll.all() as RawExtent[]).map(toExtent);
  }

  /**
   * Live extents owning any map cluster in [from, to), in map cluster order, at most `limit` (the one
   * that starts before `from` and reaches into the range included). Live extents never share map
   * clusters, so at most one starts before `from` and overlaps. Uses the `extents_cluster` index.
   */
  liveExtentsInMapRange(from: number, to: number, limit: number): Extent[] {
    const out: Extent[] = [];
    if (to <= from || limit <= 0) return out;
    const before = this.s.extentMapBefore.get(from) as RawExtent | undefined;
    if (before && before.first_cluster + before.length > from) out.push(toExtent(before));
    for (const r of this.s.extentMapRange.all(from, to, limit - out.length) as RawExtent[]) {
      out.push(toExtent(r));
    }
    return out;
  }

  /** Clusters owned by live extents. */
  usedClusters(): number {
    return (this.s.extentUsed.get() as { n: number | null }).n ?? 0;
  }

  // ---- free space, pending frees, reservations -------------------------------------------------

  freeAt(start: number): Run | undefined {
    return this.s.freeAt.get(start) as Run | undefined;
  }

  freeBefore(start: number): Run | undefined {
    return this.s.freeBefore.get(start) as Run | undefined;
  }

  /** The smallest free run of at least `length` clusters (lowest start among equals). */
  freeBestFit(length: number): Run | undefined {
    return this.s.freeBestFit.get(length) as Run | undefined;
  }

  freeLargest(): Run | undefined {
    return this.s.freeLargest.get() as Run | undefined;
  }

  freeInsert(run: Run): void {
    this.s.freeInsert.run(run.start, run.length);
  }

  freeDelete(start: number): void {
    this.s.freeDelete.run(start);
  }

  freeTotal(): number {
    return (this.s.freeTotal.get() as { n: number | null }).n ?? 0;
  }

  allFree(): Run[] {
    return this.s.freeAll.all() as Run[];
  }

  pendingInsert(run: Run): void {
    this.s.pendingInsert.run(run.start, run.length);
  }

  takePending(): Run[] {
    const runs = this.s.pendingAll.all() as Run[];
    this.s.pendingClear.run();
    return runs;
  }

  allPending(): Run[] {
    return this.s.pendingAll.all() as Run[];
  }

  reserveInsert(run: Run): void {
    this.s.reservedInsert.run(run.start, run.length);
  }

  reserveDelete(start: number): boolean {
    return this.s.reservedDelete.run(start).changes > 0;
  }

  takeReserved(): Run[] {
    const runs = this.s.reservedAll.all() as Run[];
    this.s.reservedClear.run();
    return runs;
  }

  allReserved(): Run[] {
    return this.s.reservedAll.all() as Run[];
  }

  // ---- open handles ----------------------------------------------------------------------------

  openCount(ino: number): number {
    return (this.s.openGet.get(ino) as { count: number } | undefined)?.count ?? 0;
  }

  /** Adds `delta` handles of `ino`; a count that reaches 0 removes the row. Returns the new count. */
  addOpen(ino: number, delta: number): number {
    const n = this.openCount(ino) + delta;
    if (n > 0) this.s.openSet.run(ino, n);
    else this.s.openDelete.run(ino);
    return Math.max(0, n);
  }

  clearOpen(): void {
    this.s.openClear.run();
  }

  // ---- the journal's last reply ----------------------------------------------------------------

  /** The kept reply of request `id`, if it was the last store-changing request applied. */
  lastReply(id: number): Buffer | undefined {
    const row = this.s.replyGet.get() as { id: number; result: Buffer } | undefined;
    return row && row.id === id ? row.result : undefined;
  }

  setLastReply(id: number, result: Buffer): void {
    this.s.replySet.run(id, result);
  }

  clearLastReply(): void {
    this.s.replyClear.run();
  }

  // ---- snapshots -------------------------------------------------------------------------------

  snapshots(): Snapshot[] {
    return (
      this.s.snapAll.all() as { id: bigint; name: string; generation: bigint; created_ns: bigint }[]
    ).map((r) => ({
      id: Number(r.id),
      name: r.name,
      generation: Number(r.generation),
      createdNs: r.created_ns,
    }));
  }

  /** True if a snapshot taken at a generation >= `birthGen` can still see data born then. */
  snapshotNeeds(birthGen: number): boolean {
    return this.s.snapNeeds.get(birthGen) !== undefined;
  }

  insertSnapshot(s: Omit<Snapshot, 'id'> & { id?: number }): void {
    this.s.snapInsert.run(s.id ?? null, s.name, s.generation, s.createdNs);
  }

  allMeta(): { key: string; value: string | number }[] {
    return this.s.metaAll.all() as { key: string; value: string | number }[];
  }

  putMeta(key: string, value: string | number): void {
    this.s.metaPut.run(key, metaValue(value));
    if (key === 'generation' || key === 'side' || key === 'cluster_count' || key === 'uuid') {
      this.meta = this.readMeta();
    }
  }
}

/** better-sqlite3 binds JS numbers as REAL; an ANY column would keep them REAL. */
function metaValue(v: string | number): string | bigint {
  return typeof v === 'number' ? BigInt(v) : v;
}

export function openDb(path: string, options: StoreOptions, create: boolean): Db {
  let db: Db;
  try {
    db = new Database(path, { readonly: options.readOnly === true, fileMustExist: !create });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_CANTOPEN')
      throw new ImapError('IMAP_E_NOT_FOUND', `sidecar ${path}`, { cause: err });
    throw err;
  }
  if (!options.readOnly) {
    db.pragma('journal_mode = WAL');
    // Checkpoints happen only in sync(), after the map's data is durable (ordered writes).
    db.pragma('wal_autocheckpoint = 0');
  }
  db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
  db.pragma('foreign_keys = OFF'); // checked by fsck; enforcing them would cost every insert a lookup
  return db;
}

export function migrate(db: Db): void {
  let version = db.pragma('user_version', { simple: true }) as number;
  while (version < SCHEMA_VERSION) {
    const sql = MIGRATIONS[version];
    if (sql === undefined) throw new ImapError('IMAP_E_INTERNAL', `no migration from schema ${version}`);
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${version + 1}`);
    })();
    version += 1;
  }
}

function prepareStatements(db: Db) {
  const big = (sql: string): Stmt => db.prepare(sql).safeIntegers(true);
  const p = (sql: string): Stmt => db.prepare(sql);
  const EXT = 'id, ino, file_cluster, first_cluster, length, birth_gen, death_gen, flags, crcs';
  return {
    metaAll: p('SELECT key, value FROM meta'),
    metaPut: p(
      'INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    ),
    cookieBump: p("UPDATE meta SET value = value + 1 WHERE key = 'next_cookie' RETURNING value"),

    inodeInsert: p(
      `INSERT INTO inodes(mode, uid, gid, nlink, size, rdev, flags, atime_ns, mtime_ns, ctime_ns, btime_ns, generation)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    inodeInsertIno: p(
      `INSERT INTO inodes(ino, mode, uid, gid, nlink, size, rdev, flags, atime_ns, mtime_ns, ctime_ns, btime_ns, generation)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    inodeGet: big('SELECT * FROM inodes WHERE ino = ?'),
    inodeAll: big('SELECT * FROM inodes ORDER BY ino'),
    inodeDelete: p('DELETE FROM inodes WHERE ino = ?'),
    inodeCount: p('SELECT count(*) AS n FROM inodes'),
    orphans: p('SELECT ino FROM inodes WHERE nlink = 0'),

    direntGet: p('SELECT parent, name, ino, type, cookie FROM dirents WHERE parent = ? AND name = ?'),
    direntInsert: p('INSERT INTO dirents(parent, name, ino, type, cookie) VALUES (?, ?, ?, ?, ?)'),
    direntRetarget: p('UPDATE dirents SET ino = ?, type = ? WHERE parent = ? AND name = ?'),
    direntDelete: p('DELETE FROM dirents WHERE parent = ? AND name = ?'),
    direntList: p(
      'SELECT parent, name, ino, type, cookie FROM dirents WHERE parent = ? AND cookie > ? ORDER BY cookie LIMIT ?',
    ),
    direntAny: p('SELECT 1 FROM dirents WHERE parent = ? LIMIT 1'),
    direntsOf: p('SELECT parent, name, ino, type, cookie FROM dirents WHERE ino = ?'),
    direntAll: p('SELECT parent, name, ino, type, cookie FROM dirents ORDER BY parent, cookie'),

    symlinkPut: p('INSERT OR REPLACE INTO symlinks(ino, target) VALUES (?, ?)'),
    symlinkGet: p('SELECT target FROM symlinks WHERE ino = ?'),
    symlinkDelete: p('DELETE FROM symlinks WHERE ino = ?'),
    symlinkAll: p('SELECT ino, target FROM symlinks ORDER BY ino'),

    xattrGet: p('SELECT value FROM xattrs WHERE ino = ? AND name = ?'),
    xattrPut: p('INSERT OR REPLACE INTO xattrs(ino, name, value) VALUES (?, ?, ?)'),
    xattrDelete: p('DELETE FROM xattrs WHERE ino = ? AND name = ?'),
    xattrDeleteAll: p('DELETE FROM xattrs WHERE ino = ?'),
    xattrList: p('SELECT name FROM xattrs WHERE ino = ? ORDER BY name'),
    xattrAll: p('SELECT ino, name, value FROM xattrs ORDER BY ino, name'),

    // Overlap of [file_cluster, file_cluster+length) with [from, to): file_cluster < to AND end > from.
    extentsRange: p(
      `SELECT ${EXT} FROM extents WHERE ino = ? AND death_gen IS NULL AND file_cluster < ?
         AND file_cluster + length > ? ORDER BY file_cluster`,
    ),
    extentBefore: p(
      `SELECT ${EXT} FROM extents WHERE ino = ? AND death_gen IS NULL AND file_cluster < ?
         ORDER BY file_cluster DESC LIMIT 1`,
    ),
    extentInsert: p(
      `INSERT INTO extents(ino, file_cluster, first_cluster, length, birth_gen, death_gen, flags, crcs)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    extentResize: p(
      'UPDATE extents SET file_cluster = ?, first_cluster = ?, length = ?, crcs = ? WHERE id = ?',
    ),
    extentKill: p('UPDATE extents SET death_gen = ? WHERE id = ?'),
    extentDelete: p('DELETE FROM extents WHERE id = ?'),
    extentAll: p(`SELECT ${EXT} FROM extents ORDER BY ino, file_cluster, id`),
    // By map cluster (index extents_cluster): the live extent starting last before a cluster, and
    // the live extents starting in [from, to).
    extentMapBefore: p(
      `SELECT ${EXT} FROM extents WHERE first_cluster < ? AND death_gen IS NULL
         ORDER BY first_cluster DESC LIMIT 1`,
    ),
    extentMapRange: p(
      `SELECT ${EXT} FROM extents WHERE first_cluster >= ? AND first_cluster < ? AND death_gen IS NULL
         ORDER BY first_cluster LIMIT ?`,
    ),
    extentUsed: p('SELECT sum(length) AS n FROM extents WHERE death_gen IS NULL'),

    freeAt: p('SELECT start, length FROM free_extents WHERE start = ?'),
    freeBefore: p('SELECT start, length FROM free_extents WHERE start < ? ORDER BY start DESC LIMIT 1'),
    freeBestFit: p('SELECT start, length FROM free_extents WHERE length >= ? ORDER BY length, start LIMIT 1'),
    freeLargest: p('SELECT start, length FROM free_extents ORDER BY length DESC, start LIMIT 1'),
    freeInsert: p('INSERT INTO free_extents(start, length) VALUES (?, ?)'),
    freeDelete: p('DELETE FROM free_extents WHERE start = ?'),
    freeTotal: p('SELECT sum(length) AS n FROM free_extents'),
    freeAll: p('SELECT start, length FROM free_extents ORDER BY start'),

    pendingInsert: p('INSERT INTO pending_free(start, length) VALUES (?, ?)'),
    pendingAll: p('SELECT start, length FROM pending_free ORDER BY start'),
    pendingClear: p('DELETE FROM pending_free'),
    reservedInsert: p('INSERT INTO reserved(start, length) VALUES (?, ?)'),
    reservedDelete: p('DELETE FROM reserved WHERE start = ?'),
    reservedAll: p('SELECT start, length FROM reserved ORDER BY start'),
    reservedClear: p('DELETE FROM reserved'),

    openGet: p('SELECT count FROM open_files WHERE ino = ?'),
    openSet: p(
      'INSERT INTO open_files(ino, count) VALUES (?, ?) ON CONFLICT(ino) DO UPDATE SET count = excluded.count',
    ),
    openDelete: p('DELETE FROM open_files WHERE ino = ?'),
    openClear: p('DELETE FROM open_files'),
    replyGet: p('SELECT id, result FROM last_reply WHERE slot = 0'),
    replySet: p(
      'INSERT INTO last_reply(slot, id, result) VALUES (0, ?, ?) ON CONFLICT(slot) DO UPDATE SET id = excluded.id, result = excluded.result',
    ),
    replyClear: p('DELETE FROM last_reply'),

    snapAll: big('SELECT id, name, generation, created_ns FROM snapshots ORDER BY id'),
    snapNeeds: p('SELECT 1 FROM snapshots WHERE generation >= ? LIMIT 1'),
    snapInsert: p('INSERT INTO snapshots(id, name, generation, created_ns) VALUES (?, ?, ?, ?)'),
  };
}

/** The inode columns after `ino`, in the order of the insert statements' placeholders. */
function inodeColumns(i: NewInode): Array<number | bigint> {
  return [
    i.mode,
    i.uid,
    i.gid,
    i.nlink,
    i.size,
    i.rdev,
    i.flags,
    i.atimeNs,
    i.mtimeNs,
    i.ctimeNs,
    i.btimeNs,
    i.generation,
  ];
}
