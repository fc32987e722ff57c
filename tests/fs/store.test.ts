import { copyFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MetadataStore } from '../../src/fs/store';
import { ROOT_INO } from '../../src/fs/types';
import { expectCode, makeFs, name, tempDir } from '../helpers/fs-fixture';

describe('MetadataStore', () => {
  it('upgrades a v1 sidecar to v2 on open, files intact, with no open handles', () => {
    const fx = makeFs();
    try {
      const f = fx.fs.create(ROOT_INO, name('kept'), 0o100644, { uid: 0, gid: 0, umask: 0o022 });
      fx.fs.open(f.ino);
      // What version 1 was: no open_files, no last_reply.
      fx.store.db.exec('DROP TABLE open_files; DROP TABLE last_reply');
      fx.store.db.pragma('user_version = 1');
      fx.reopen();
      expect(fx.store.info.schemaVersion).toBe(2);
      expect(fx.fs.lookup(ROOT_INO, name('kept'), { uid: 0, gid: 0, groups: [] }).ino).toBe(f.ino);
      expect(fx.fs.isOpen(f.ino)).toBe(false);
      fx.fs.open(f.ino);
      expect(fx.fs.isOpen(f.ino)).toBe(true);
    } finally {
      fx.cleanup();
    }
  });

  it('creates a WAL database with schema v2 and a root directory', () => {
    const fx = makeFs();
    try {
      expect(fx.store.db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(fx.store.info.schemaVersion).toBe(2);
      expect(fx.store.info.clusterCount).toBe(1024);
      expect(fx.store.getInode(ROOT_INO)?.nlink).toBe(2);
      expect(fx.store.allFree()).toEqual([{ start: 0, length: 1024 }]);
    } finally {
      fx.cleanup();
    }
  });

  it('syncWal keeps committed transactions in the WAL file, where a fresh open finds them', () => {
    const fx = makeFs();
    try {
      fx.store.syncWal(); // nothing committed since the create's checkpoint: falls back, no error
      const ino = fx.store.insertInode({
        mode: 0o100644,
        uid: 7,
        gid: 8,
        nlink: 1,
        size: 3,
        rdev: 0,
        flags: 0,
        atimeNs: 1n,
        mtimeNs: 2n,
        ctimeNs: 3n,
        btimeNs: 4n,
        generation: 1,
      });
      const walBefore = statSync(`${fx.store.path}-wal`).size;
      fx.store.syncWal();
      // Not folded into the database file: the WAL still holds the frames after the durable point.
      expect(statSync(`${fx.store.path}-wal`).size).toBe(walBefore);
      expect(walBefore).toBeGreaterThan(0);
      // A copy of the files as they are (what a power cut after syncWal leaves) recovers the row.
      const elsewhere = tempDir('imapfs-walcopy-');
      const copy = join(elsewhere.dir, 'copy.db');
      copyFileSync(fx.store.path, copy);
      copyFileSync(`${fx.store.path}-wal`, `${copy}-wal`);
      const reopened = MetadataStore.open(copy);
      try {
        expect(reopened.getInode(ino)).toMatchObject({ uid: 7, gid: 8, size: 3 });
      } finally {
        reopened.close();
        elsewhere.cleanup();
      }
    } finally {
      fx.cleanup();
    }
  });

  it('keeps nanosecond times exactly and survives reopen', () => {
    const fx = makeFs();
    try {
      const t = 1_700_000_000_123_456_789n;
      const ino = fx.store.insertInode({
        mode: 0o100644,
        uid: 1,
        gid: 2,
        nlink: 1,
        size: 5,
        rdev: 0,
        flags: 0,
        atimeNs: t,
        mtimeNs: t + 1n,
        ctimeNs: t + 2n,
        btimeNs: -5n,
        generation: 1,
      });
      fx.store.sync();
      fx.reopen();
      const i = fx.store.getInode(ino);
      expect(i?.atimeNs).toBe(t);
      expect(i?.mtimeNs).toBe(t + 1n);
      expect(i?.btimeNs).toBe(-5n);
    } finally {
      fx.cleanup();
    }
  });

  it('enforces one entry per (parent, name) and keeps names as bytes', () => {
    const fx = makeFs();
    try {
      const latin = Buffer.from([0xff, 0xfe, 0x41]);
      fx.store.insertDirent(ROOT_INO, latin, 5, 0o100000);
      expect(() => fx.store.insertDirent(ROOT_INO, latin, 6, 0o100000)).toThrow(/UNIQUE/);
      expect(fx.store.lookup(ROOT_INO, latin)?.ino).toBe(5);
      expect(fx.store.lookup(ROOT_INO, name('A'))).toBeUndefined();
    } finally {
      fx.cleanup();
    }
  });

  it('rolls a failed transaction back', () => {
    const fx = makeFs();
    try {
      expect(() =>
        fx.store.transaction(() => {
          fx.store.insertDirent(ROOT_INO, name('x'), 9, 0);
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(fx.store.lookup(ROOT_INO, name('x'))).toBeUndefined();
    } finally {
      fx.cleanup();
    }
  });

  it('rejects a missing or foreign file with a clear code', () => {
    const { dir, cleanup } = tempDir();
    try {
      expectCode(() => MetadataStore.open(join(dir, 'nope.imapdb')), 'IMAP_E_NOT_FOUND');
      writeFileSync(join(dir, 'junk.imapdb'), 'not sqlite at all, not at all, not at all');
      expectCode(() => MetadataStore.open(join(dir, 'junk.imapdb')), 'IMAP_E_CORRUPT_METADATA');
    } finally {
      cleanup();
    }
  });

  it('sync() makes commits durable (WAL checkpointed into the main file)', () => {
    const fx = makeFs();
    try {
      fx.store.insertDirent(ROOT_INO, name('durable'), 2, 0);
      fx.store.sync();
      const size = statSync(fx.dbPath).size;
      expect(size).toBeGreaterThan(0);
      const ro = MetadataStore.open(fx.dbPath, { readOnly: true });
      expect(ro.lookup(ROOT_INO, name('durable'))?.ino).toBe(2);
      ro.close();
    } finally {
      fx.cleanup();
    }
  });
  it('lists live extents by map cluster through the extents_cluster index (neighbour prefetch)', () => {
    const fx = makeFs();
    try {
      const crcs = (n: number, seed: number): Buffer => {
        const b = Buffer.alloc(n * 4);
        for (let i = 0; i < n; i++) b.writeUInt32LE(seed * 1000 + i, i * 4);
        return b;
      };
      const ext = (ino: number, fileCluster: number, first: number, length: number, flags = 0) => ({
        ino,
        fileCluster,
        firstCluster: first,
        length,
        birthGen: 1,
        deathGen: null,
        flags,
        crcs: crcs(length, ino),
      });
      fx.store.transaction(() => {
        fx.store.insertExtent(ext(10, 0, 0, 4)); // [0, 4)
        fx.store.insertExtent(ext(11, 2, 4, 3)); // [4, 7)
        fx.store.insertExtent({ ...ext(12, 0, 7, 2), deathGen: 1 }); // dead (a snapshot keeps it)
        fx.store.insertExtent(ext(13, 0, 9, 2, 1)); // unwritten (fallocated)
        fx.store.insertExtent(ext(14, 5, 11, 6)); // [11, 17)
      });
      const rows = (from: number, to: number, limit = 100) =>
        fx.store.liveExtentsInMapRange(from, to, limit).map((e) => [e.ino, e.firstCluster]);
      expect(rows(2, 12)).toEqual([
        [10, 0],
        [11, 4],
        [13, 9],
        [14, 11],
      ]);
      expect(rows(7, 9)).toEqual([]);
      expect(rows(2, 12, 2)).toEqual([
        [10, 0],
        [11, 4],
      ]);
      // ExtentMap clips to the range and leaves unwritten extents out; CRCs follow the clip.
      const segs = fx.fs.extents.mapSegments(2, 10, 100);
      expect(segs.map((s) => [s.ino, s.fileCluster, s.mapCluster, s.count])).toEqual([
        [10, 2, 2, 2],
        [11, 2, 4, 3],
        [14, 5, 11, 1],
      ]);
      expect(Buffer.from(segs[0]!.crcs)).toEqual(crcs(4, 10).subarray(8, 16));
      const plan = (sql: string) =>
        (fx.store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[])
          .map((r) => r.detail)
          .join('; ');
      expect(
        plan('SELECT id FROM extents WHERE first_cluster >= 1 AND first_cluster < 9 AND death_gen IS NULL'),
      ).toMatch(/USING INDEX extents_cluster/);
      expect(
        plan(
          'SELECT id FROM extents WHERE first_cluster < 9 AND death_gen IS NULL ORDER BY first_cluster DESC LIMIT 1',
        ),
      ).toMatch(/USING INDEX extents_cluster/);
    } finally {
      fx.cleanup();
    }
  });
});
