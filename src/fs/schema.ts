/**
 * The sidecar's SQL schema and its migrations. `PRAGMA user_version` holds the schema version; each
 * migration moves the database from version i to i+1 inside one transaction, so an interrupted
 * upgrade leaves the old version intact. docs/metadata.md explains every table and column.
 */

export const SCHEMA_VERSION = 2;

/** Migration i (0-based) upgrades user_version i to i+1. Never edit a released entry: append. */
export const MIGRATIONS: readonly string[] = [
  `
  -- Key/value facts about the filesystem: uuid, generation, side, cluster_count, next_cookie.
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY NOT NULL
  ) WITHOUT ROWID, STRICT;

  -- One row per inode. Times are integer nanoseconds since the epoch (fit in i64 until 2262).
  -- AUTOINCREMENT: inode numbers are never reused, so (ino) alone names a file for NFS-style handles.
  CREATE TABLE inodes (
    ino        INTEGER PRIMARY KEY AUTOINCREMENT,
    mode       INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    gid        INTEGER NOT NULL,
    nlink      INTEGER NOT NULL,
    size       INTEGER NOT NULL DEFAULT 0,
    rdev       INTEGER NOT NULL DEFAULT 0,
    flags      INTEGER NOT NULL DEFAULT 0,
    atime_ns   INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    ctime_ns   INTEGER NOT NULL,
    btime_ns   INTEGER NOT NULL,
    generation INTEGER NOT NULL
  ) STRICT;
  -- Orphans (unlinked while open, or left by a crash) are found at mount without a table scan.
  CREATE INDEX inodes_orphans ON inodes(ino) WHERE nlink = 0;

  -- Directory entries. Names are bytes (POSIX names are not necessarily UTF-8). cookie is the
  -- readdir offset: unique and increasing, so a listing resumes correctly across inserts/removals.
  CREATE TABLE dirents (
    parent INTEGER NOT NULL REFERENCES inodes(ino),
    name   BLOB    NOT NULL,
    ino    INTEGER NOT NULL REFERENCES inodes(ino),
    type   INTEGER NOT NULL,
    cookie INTEGER NOT NULL,
    PRIMARY KEY (parent, name)
  ) WITHOUT ROWID, STRICT;
  CREATE INDEX dirents_ino ON dirents(ino);
  CREATE UNIQUE INDEX dirents_cookie ON dirents(parent, cookie);

  CREATE TABLE symlinks (
    ino    INTEGER PRIMARY KEY REFERENCES inodes(ino),
    target BLOB NOT NULL
  ) STRICT;

  CREATE TABLE xattrs (
    ino   INTEGER NOT NULL REFERENCES inodes(ino),
    name  BLOB    NOT NULL,
    value BLOB    NOT NULL,
    PRIMARY KEY (ino, name)
  ) WITHOUT ROWID, STRICT;

  -- A run of map clusters holding file clusters [file_cluster, file_cluster + length).
  -- crcs: length little-endian u32 CRC-32s, one per cluster (see docs/metadata.md for why a BLOB).
  -- death_gen is NULL while the extent is live; a dead extent is kept only while a snapshot needs it.
  -- flags bit 0 = UNWRITTEN (fallocated: owns clusters, reads as zeros).
  CREATE TABLE extents (
    id            INTEGER PRIMARY KEY,
    ino           INTEGER NOT NULL,
    file_cluster  INTEGER NOT NULL,
    first_cluster INTEGER NOT NULL,
    length        INTEGER NOT NULL CHECK (length > 0),
    birth_gen     INTEGER NOT NULL,
    death_gen     INTEGER,
    flags         INTEGER NOT NULL DEFAULT 0,
    crcs          BLOB    NOT NULL
  ) STRICT;
  CREATE UNIQUE INDEX extents_live ON extents(ino, file_cluster) WHERE death_gen IS NULL;
  CREATE INDEX extents_dead ON extents(ino, file_cluster) WHERE death_gen IS NOT NULL;
  CREATE INDEX extents_cluster ON extents(first_cluster);

  -- Free space as coalesced runs: no two rows touch or overlap.
  CREATE TABLE free_extents (
    start  INTEGER PRIMARY KEY,
    length INTEGER NOT NULL CHECK (length > 0)
  ) STRICT;
  CREATE INDEX free_by_length ON free_extents(length, start);

  -- Clusters freed by a committed transaction that must not be reused until the next durable point
  -- (see ClusterAllocator.releasePending): a crash must never leave a live extent on reused clusters.
  CREATE TABLE pending_free (
    start  INTEGER PRIMARY KEY,
    length INTEGER NOT NULL CHECK (length > 0)
  ) STRICT;

  -- Clusters handed out by prepareWrite and not yet committed. Returned to free space at open.
  CREATE TABLE reserved (
    start  INTEGER PRIMARY KEY,
    length INTEGER NOT NULL CHECK (length > 0)
  ) STRICT;

  CREATE TABLE snapshots (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    generation INTEGER NOT NULL,
    created_ns INTEGER NOT NULL
  ) STRICT;
  `,
  `
  -- Open handles per inode while mounted (an unlinked file lives until its last close). In the store,
  -- not in the journal thread's memory, so a journal worker that replaces a crashed one knows them.
  -- Emptied at mount: no handle survives the daemon.
  CREATE TABLE open_files (
    ino   INTEGER PRIMARY KEY,
    count INTEGER NOT NULL CHECK (count > 0)
  ) STRICT;

  -- The reply of the journal's last store-changing request, written in that request's transaction.
  -- The journal serves one request at a time, so after a crash at most that one is delivered again;
  -- if its transaction committed, the kept reply answers it instead of applying it twice. Request ids
  -- count from 0 in each mount: emptied at mount.
  CREATE TABLE last_reply (
    slot   INTEGER PRIMARY KEY CHECK (slot = 0),
    id     INTEGER NOT NULL,
    result BLOB    NOT NULL
  ) STRICT;
  `,
];
