import { RENAME_EXCHANGE, RENAME_NOREPLACE, XATTR_CREATE, XATTR_REPLACE } from '../../src/fs/filesystem';
import { S_IFDIR, S_IFIFO, S_IFLNK, S_ISGID, S_ISVTX } from '../../src/fs/modes';
import { ROOT_INO } from '../../src/fs/types';
import { ALICE, BOB, ROOT, type Fixture, expectCode, makeFs, name } from '../helpers/fs-fixture';

let fx: Fixture;
beforeEach(() => {
  fx = makeFs();
  fx.fs.setattr(ROOT_INO, { mode: 0o777 }, ROOT); // let the test users create at the top
});
afterEach(() => fx.cleanup());

describe('FileSystem namespace', () => {
  it('creates with caller ids and umask, and moves parent times', () => {
    const before = fx.fs.getattr(ROOT_INO);
    const f = fx.fs.create(ROOT_INO, name('f'), 0o666, ALICE);
    expect(f.mode & 0o7777).toBe(0o644);
    expect([f.uid, f.gid, f.nlink]).toEqual([1000, 1000, 1]);
    const after = fx.fs.getattr(ROOT_INO);
    expect(after.mtimeNs > before.mtimeNs).toBe(true);
    expect(after.ctimeNs > before.ctimeNs).toBe(true);
    expect(fx.fs.lookup(ROOT_INO, name('f')).ino).toBe(f.ino);
  });

  it('reports the right errnos', () => {
    const f = fx.fs.create(ROOT_INO, name('f'), 0o644, ROOT);
    expectCode(() => fx.fs.create(ROOT_INO, name('f'), 0o644, ROOT), 'IMAP_E_EXISTS');
    expectCode(() => fx.fs.lookup(ROOT_INO, name('nope')), 'IMAP_E_NOT_FOUND');
    expectCode(() => fx.fs.lookup(f.ino, name('x')), 'IMAP_E_NOT_DIR');
    expectCode(() => fx.fs.create(ROOT_INO, Buffer.alloc(256, 0x61), 0o644, ROOT), 'IMAP_E_NAME_TOO_LONG');
    fx.fs.create(ROOT_INO, Buffer.alloc(255, 0x61), 0o644, ROOT);
    expectCode(() => fx.fs.rmdir(ROOT_INO, name('f'), ROOT), 'IMAP_E_NOT_DIR');
    const d = fx.fs.mkdir(ROOT_INO, name('d'), 0o755, ROOT);
    expectCode(() => fx.fs.unlink(ROOT_INO, name('d'), ROOT), 'IMAP_E_IS_DIR');
    fx.fs.create(d.ino, name('x'), 0o644, ROOT);
    expectCode(() => fx.fs.rmdir(ROOT_INO, name('d'), ROOT), 'IMAP_E_NOT_EMPTY');
    expectCode(() => fx.fs.link(d.ino, ROOT_INO, name('dl'), ROOT), 'IMAP_E_NOT_PERMITTED');
    expectCode(() => fx.fs.create(ROOT_INO, name('a/b'), 0o644, ROOT), 'IMAP_E_INVALID');
    expectCode(() => fx.fs.mkdir(ROOT_INO, name('.'), 0o755, ROOT), 'IMAP_E_EXISTS');
  });

  it('counts directory links and keeps names as bytes', () => {
    const d = fx.fs.mkdir(ROOT_INO, name('d'), 0o755, ROOT);
    expect(d.nlink).toBe(2);
    expect(fx.fs.getattr(ROOT_INO).nlink).toBe(3);
    const raw = Buffer.from([0xc3, 0x28, 0xff]);
    fx.fs.create(d.ino, raw, 0o644, ROOT);
    expect(fx.fs.readdir(d.ino).map((e) => e.name)).toEqual([name('.'), name('..'), raw]);
    expect(fx.fs.lookup(d.ino, name('..')).ino).toBe(ROOT_INO);
    fx.fs.unlink(d.ino, raw, ROOT);
    fx.fs.rmdir(ROOT_INO, name('d'), ROOT);
    expect(fx.fs.getattr(ROOT_INO).nlink).toBe(2);
  });

  it('hard links share one inode; the last unlink frees it', () => {
    const f = fx.fs.create(ROOT_INO, name('a'), 0o644, ROOT);
    fx.fs.link(f.ino, ROOT_INO, name('b'), ROOT);
    expect(fx.fs.getattr(f.ino).nlink).toBe(2);
    fx.fs.unlink(ROOT_INO, name('a'), ROOT);
    expect(fx.fs.lookup(ROOT_INO, name('b')).nlink).toBe(1);
    fx.fs.unlink(ROOT_INO, name('b'), ROOT);
    expectCode(() => fx.fs.getattr(f.ino), 'IMAP_E_NOT_FOUND');
  });

  it('symlinks store byte targets; mknod makes fifos', () => {
    const target = Buffer.from([0x2e, 0x2e, 0x2f, 0xff]);
    const l = fx.fs.symlink(ROOT_INO, name('l'), target, ALICE);
    expect(l.mode & 0o170000).toBe(S_IFLNK);
    expect(l.size).toBe(4);
    expect(fx.fs.readlink(l.ino)).toEqual(target);
    const p = fx.fs.mknod(ROOT_INO, name('p'), S_IFIFO | 0o600, 0, ROOT);
    expect(p.mode & 0o170000).toBe(S_IFIFO);
    expectCode(() => fx.fs.readlink(p.ino), 'IMAP_E_INVALID');
  });

  it('keeps unlinked-but-open inodes until release, and cleans orphans at mount', () => {
    const f = fx.fs.create(ROOT_INO, name('f'), 0o644, ROOT);
    fx.fs.open(f.ino);
    fx.fs.unlink(ROOT_INO, name('f'), ROOT);
    expect(fx.fs.getattr(f.ino).nlink).toBe(0);
    fx.fs.release(f.ino);
    expectCode(() => fx.fs.getattr(f.ino), 'IMAP_E_NOT_FOUND');
    const g = fx.fs.create(ROOT_INO, name('g'), 0o644, ROOT);
    fx.fs.open(g.ino);
    fx.fs.unlink(ROOT_INO, name('g'), ROOT);
    fx.reopen(); // a crash while open
    expect(fx.fs.mountRecovery().orphans).toBe(1);
    expectCode(() => fx.fs.getattr(g.ino), 'IMAP_E_NOT_FOUND');
  });

  it('readdir cookies stay valid across concurrent changes', () => {
    for (let i = 0; i < 10; i += 1) fx.fs.create(ROOT_INO, name(`f${i}`), 0o644, ROOT);
    const first = fx.fs.readdir(ROOT_INO, 0, 5);
    expect(first.map((e) => e.name.toString())).toEqual(['.', '..', 'f0', 'f1', 'f2']);
    fx.fs.unlink(ROOT_INO, name('f1'), ROOT);
    fx.fs.unlink(ROOT_INO, name('f3'), ROOT);
    fx.fs.create(ROOT_INO, name('new'), 0o644, ROOT);
    const rest = fx.fs.readdir(ROOT_INO, first[first.length - 1]?.cookie ?? 0, 100);
    expect(rest.map((e) => e.name.toString())).toEqual(['f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'new']);
  });
});

describe('rename', () => {
  it('replaces files, moves directories, keeps counts', () => {
    const a = fx.fs.create(ROOT_INO, name('a'), 0o644, ROOT);
    const b = fx.fs.create(ROOT_INO, name('b'), 0o644, ROOT);
    fx.fs.rename(ROOT_INO, name('a'), ROOT_INO, name('b'), 0, ROOT);
    expect(fx.fs.lookup(ROOT_INO, name('b')).ino).toBe(a.ino);
    expectCode(() => fx.fs.getattr(b.ino), 'IMAP_E_NOT_FOUND');
    const d1 = fx.fs.mkdir(ROOT_INO, name('d1'), 0o755, ROOT);
    const d2 = fx.fs.mkdir(ROOT_INO, name('d2'), 0o755, ROOT);
    const sub = fx.fs.mkdir(d1.ino, name('sub'), 0o755, ROOT);
    fx.fs.rename(d1.ino, name('sub'), d2.ino, name('sub'), 0, ROOT);
    expect(fx.fs.getattr(d1.ino).nlink).toBe(2);
    expect(fx.fs.getattr(d2.ino).nlink).toBe(3);
    expect(fx.fs.lookup(sub.ino, name('..')).ino).toBe(d2.ino);
    // a directory over an empty directory
    fx.fs.mkdir(ROOT_INO, name('empty'), 0o755, ROOT);
    fx.fs.rename(ROOT_INO, name('d1'), ROOT_INO, name('empty'), 0, ROOT);
    expect(fx.fs.lookup(ROOT_INO, name('empty')).ino).toBe(d1.ino);
    expect(fx.fs.getattr(ROOT_INO).nlink).toBe(4); // d2, empty(=d1) + . + ..
  });

  it('enforces the POSIX errors', () => {
    const d = fx.fs.mkdir(ROOT_INO, name('d'), 0o755, ROOT);
    const sub = fx.fs.mkdir(d.ino, name('sub'), 0o755, ROOT);
    fx.fs.create(ROOT_INO, name('f'), 0o644, ROOT);
    fx.fs.create(sub.ino, name('x'), 0o644, ROOT);
    expectCode(() => fx.fs.rename(ROOT_INO, name('d'), sub.ino, name('d'), 0, ROOT), 'IMAP_E_INVALID');
    expectCode(() => fx.fs.rename(ROOT_INO, name('d'), d.ino, name('in'), 0, ROOT), 'IMAP_E_INVALID');
    expectCode(() => fx.fs.rename(ROOT_INO, name('f'), ROOT_INO, name('d'), 0, ROOT), 'IMAP_E_IS_DIR');
    expectCode(() => fx.fs.rename(ROOT_INO, name('d'), ROOT_INO, name('f'), 0, ROOT), 'IMAP_E_NOT_DIR');
    fx.fs.mkdir(ROOT_INO, name('e'), 0o755, ROOT);
    expectCode(() => fx.fs.rename(ROOT_INO, name('e'), d.ino, name('sub'), 0, ROOT), 'IMAP_E_NOT_EMPTY');
    expectCode(
      () => fx.fs.rename(ROOT_INO, name('f'), ROOT_INO, name('e'), RENAME_NOREPLACE, ROOT),
      'IMAP_E_EXISTS',
    );
    expectCode(() => fx.fs.rename(ROOT_INO, name('nope'), ROOT_INO, name('z'), 0, ROOT), 'IMAP_E_NOT_FOUND');
    expectCode(
      () => fx.fs.rename(ROOT_INO, name('f'), ROOT_INO, name('z'), RENAME_EXCHANGE, ROOT),
      'IMAP_E_NOT_FOUND',
    );
    expectCode(() => fx.fs.rename(ROOT_INO, name('f'), ROOT_INO, name('z'), 3, ROOT), 'IMAP_E_INVALID');
  });

  it('exchanges atomically, fixing link counts across directories', () => {
    const d = fx.fs.mkdir(ROOT_INO, name('d'), 0o755, ROOT);
    const inner = fx.fs.mkdir(d.ino, name('inner'), 0o755, ROOT);
    const f = fx.fs.create(ROOT_INO, name('f'), 0o644, ROOT);
    fx.fs.rename(ROOT_INO, name('f'), d.ino, name('inner'), RENAME_EXCHANGE, ROOT);
    expect(fx.fs.lookup(ROOT_INO, name('f')).ino).toBe(inner.ino);
    expect(fx.fs.lookup(d.ino, name('inner')).ino).toBe(f.ino);
    expect(fx.fs.getattr(d.ino).nlink).toBe(2);
    expect(fx.fs.getattr(ROOT_INO).nlink).toBe(4);
  });

  it('honours sticky directories', () => {
    const tmp = fx.fs.mkdir(ROOT_INO, name('tmp'), 0o777, ROOT);
    fx.fs.setattr(tmp.ino, { mode: 0o1777 | S_ISVTX }, ROOT);
    fx.fs.create(tmp.ino, name('alice'), 0o644, ALICE);
    expectCode(() => fx.fs.unlink(tmp.ino, name('alice'), BOB), 'IMAP_E_NOT_PERMITTED');
    fx.fs.unlink(tmp.ino, name('alice'), ALICE);
  });
});

describe('setattr and permissions', () => {
  it('chmod/chown rules and ctime', () => {
    const f = fx.fs.create(ROOT_INO, name('f'), 0o644, ALICE);
    expectCode(() => fx.fs.setattr(f.ino, { mode: 0o600 }, BOB), 'IMAP_E_NOT_PERMITTED');
    expectCode(() => fx.fs.setattr(f.ino, { uid: 1001 }, ALICE), 'IMAP_E_NOT_PERMITTED');
    expectCode(() => fx.fs.setattr(f.ino, { gid: 5 }, ALICE), 'IMAP_E_NOT_PERMITTED');
    const g = fx.fs.setattr(f.ino, { mode: 0o4755 }, ALICE);
    expect(g.mode & 0o7777).toBe(0o4755);
    expect(g.ctimeNs > f.ctimeNs).toBe(true);
    const h = fx.fs.setattr(f.ino, { uid: 7 }, ROOT);
    expect(h.mode & 0o7777).toBe(0o755); // chown drops setuid
    const t = 123_456_789_012_345_678n;
    const i = fx.fs.setattr(f.ino, { atimeNs: t, mtimeNs: t + 1n }, ROOT);
    expect([i.atimeNs, i.mtimeNs]).toEqual([t, t + 1n]);
  });

  it('checks directory write and search permission', () => {
    const d = fx.fs.mkdir(ROOT_INO, name('d'), 0o755, ROOT);
    expectCode(() => fx.fs.create(d.ino, name('x'), 0o644, ALICE), 'IMAP_E_PERMISSION');
    fx.fs.setattr(d.ino, { mode: 0o700 }, ROOT);
    expectCode(() => fx.fs.lookup(d.ino, name('x'), ALICE), 'IMAP_E_PERMISSION');
  });

  it('setgid directories pass their group down', () => {
    const d = fx.fs.mkdir(ROOT_INO, name('d'), 0o777, ROOT);
    fx.fs.setattr(d.ino, { mode: 0o2777, gid: 50 }, ROOT);
    const f = fx.fs.create(d.ino, name('f'), 0o644, ALICE);
    const sub = fx.fs.mkdir(d.ino, name('s'), 0o755, ALICE);
    expect(f.gid).toBe(50);
    expect(sub.mode & S_ISGID).toBe(S_ISGID);
    expect(sub.mode & 0o170000).toBe(S_IFDIR);
  });
});

describe('xattrs', () => {
  it('create/replace flags, sizes, list, remove', () => {
    const f = fx.fs.create(ROOT_INO, name('f'), 0o644, ROOT);
    const k = name('user.k');
    fx.fs.setxattr(f.ino, k, Buffer.from('v1'), XATTR_CREATE, ROOT);
    expectCode(() => fx.fs.setxattr(f.ino, k, Buffer.from('v2'), XATTR_CREATE, ROOT), 'IMAP_E_EXISTS');
    expectCode(
      () => fx.fs.setxattr(f.ino, name('user.no'), Buffer.from('x'), XATTR_REPLACE, ROOT),
      'IMAP_E_NO_ATTR',
    );
    fx.fs.setxattr(f.ino, k, Buffer.from('value2'), XATTR_REPLACE, ROOT);
    expect(fx.fs.getxattr(f.ino, k).toString()).toBe('value2');
    expect(fx.fs.getxattr(f.ino, k, 0).length).toBe(6); // size query
    expectCode(() => fx.fs.getxattr(f.ino, k, 3), 'IMAP_E_RANGE');
    fx.fs.setxattr(f.ino, name('user.a'), Buffer.alloc(0), 0, ROOT);
    expect(fx.fs.listxattr(f.ino).toString()).toBe('user.a\0user.k\0');
    expectCode(() => fx.fs.listxattr(f.ino, 5), 'IMAP_E_RANGE');
    fx.fs.setxattr(f.ino, name('user.big'), Buffer.alloc(64 * 1024), 0, ROOT);
    expectCode(
      () => fx.fs.setxattr(f.ino, name('user.big'), Buffer.alloc(64 * 1024 + 1), 0, ROOT),
      'IMAP_E_TOO_BIG',
    );
    fx.fs.removexattr(f.ino, k, ROOT);
    expectCode(() => fx.fs.getxattr(f.ino, k), 'IMAP_E_NO_ATTR');
    expectCode(() => fx.fs.removexattr(f.ino, k, ROOT), 'IMAP_E_NO_ATTR');
    expectCode(
      () => fx.fs.setxattr(f.ino, name('trusted.x'), Buffer.from('1'), 0, ALICE),
      'IMAP_E_NOT_PERMITTED',
    );
  });

  it('statfs reports clusters', () => {
    const s = fx.fs.statfs();
    expect(s).toMatchObject({ bsize: 4096, blocks: 1024, bfree: 1024, namemax: 255 });
  });
});
