/**
 * Issue 4, "Must show" 2: every op's errno cases through a real mount, driven by python3 in a child
 * process (os.* calls raise OSError with the kernel's errno): ENOENT, EEXIST, ENOTDIR, EISDIR,
 * ENOTEMPTY, ENAMETOOLONG, rename's POSIX semantics, truncate, utimens (ns, UTIME_OMIT), chmod/chown
 * (as another user, with allow_other), symlinks, hardlinks, xattrs (ERANGE), statfs, access, an
 * open-but-unlinked file; ENOSPC with growth disabled (`-o nogrow`); EROFS with `-o ro`.
 */
import { join } from 'node:path';
import {
  fsck,
  imapfs,
  mkfs,
  mount,
  pngcheck,
  py,
  removeDir,
  requireBuild,
  tempDir,
  umount,
  type Mount,
} from './helpers';

jest.setTimeout(300_000);

const NOBODY = 65534;

/** Prelude of every snippet: P() joins onto the mountpoint; err() runs fn and names its errno. */
const PRELUDE = `
import ctypes, errno, json, os, stat, sys
m = sys.argv[1]
def P(*a): return os.path.join(m, *a)
def err(fn, *a):
    try:
        fn(*a)
        return 'OK'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
libc = ctypes.CDLL(None, use_errno=True)
class TS(ctypes.Structure): _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
def cerr(r):
    return 'OK' if r >= 0 else errno.errorcode.get(ctypes.get_errno())
out = {}
`;

let work: string;
let map: string;
let m: Mount | null = null;

beforeAll(async () => {
  requireBuild();
  work = tempDir('errno');
  map = join(work, 'map.png');
  await mkfs(map, '32M');
  m = await mount(map, ['-o', 'allow_other']);
});

afterAll(async () => {
  await umount(m);
  removeDir(m?.mountpoint);
  removeDir(work);
});

const t = (code: string, asUser?: number) =>
  py<Record<string, unknown>>(`${PRELUDE}${code}\nprint(json.dumps(out))`, [m!.mountpoint], asUser);

describe('errno per op', () => {
  it('lookup, create, mkdir, rmdir, unlink, open: ENOENT EEXIST ENOTDIR EISDIR ENOTEMPTY ENAMETOOLONG', async () => {
    const out = await t(`
os.mkdir(P('a')); os.mkdir(P('a/d')); open(P('a/f'), 'w').write('x'); open(P('a/d/inner'), 'w').close()
out['stat missing'] = err(os.stat, P('a/nope'))
out['open missing parent'] = err(os.open, P('a/nope/x'), os.O_CREAT | os.O_WRONLY)
out['unlink missing'] = err(os.unlink, P('a/nope'))
out['rmdir missing'] = err(os.rmdir, P('a/nope'))
out['mkdir existing dir'] = err(os.mkdir, P('a/d'))
out['mkdir existing file'] = err(os.mkdir, P('a/f'))
out['O_EXCL existing'] = err(os.open, P('a/f'), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
out['stat through file'] = err(os.stat, P('a/f/x'))
out['mkdir under file'] = err(os.mkdir, P('a/f/x'))
out['rmdir file'] = err(os.rmdir, P('a/f'))
out['opendir file'] = err(os.listdir, P('a/f'))
out['open dir for write'] = err(os.open, P('a/d'), os.O_WRONLY)
out['unlink dir'] = err(os.unlink, P('a/d'))
out['rmdir non-empty'] = err(os.rmdir, P('a/d'))
out['create 256-byte name'] = err(os.open, P('a/' + 'n' * 256), os.O_CREAT | os.O_WRONLY)
out['mkdir 256-byte name'] = err(os.mkdir, P('a/' + 'n' * 256))
out['stat 256-byte name'] = err(os.stat, P('a/' + 'n' * 256))
out['create 255-byte name'] = err(lambda: os.close(os.open(P('a/' + 'n' * 255), os.O_CREAT | os.O_WRONLY)))
out['non-UTF-8 name'] = err(lambda: os.close(os.open(P('a').encode() + b'/\\xff\\xfe', os.O_CREAT | os.O_WRONLY)))
out['non-UTF-8 listed'] = b'\\xff\\xfe' in os.listdir(P('a').encode())
os.unlink(P('a/d/inner'))
out['rmdir emptied'] = err(os.rmdir, P('a/d'))
`);
    expect(out).toEqual({
      'stat missing': 'ENOENT',
      'open missing parent': 'ENOENT',
      'unlink missing': 'ENOENT',
      'rmdir missing': 'ENOENT',
      'mkdir existing dir': 'EEXIST',
      'mkdir existing file': 'EEXIST',
      'O_EXCL existing': 'EEXIST',
      'stat through file': 'ENOTDIR',
      'mkdir under file': 'ENOTDIR',
      'rmdir file': 'ENOTDIR',
      'opendir file': 'ENOTDIR',
      'open dir for write': 'EISDIR',
      'unlink dir': 'EISDIR',
      'rmdir non-empty': 'ENOTEMPTY',
      'create 256-byte name': 'ENAMETOOLONG',
      'mkdir 256-byte name': 'ENAMETOOLONG',
      'stat 256-byte name': 'ENAMETOOLONG',
      'create 255-byte name': 'OK',
      'non-UTF-8 name': 'OK',
      'non-UTF-8 listed': true,
      'rmdir emptied': 'OK',
    });
  });

  it('rename: replaces a file, a dir over an empty dir; ENOTEMPTY, EINVAL, ENOTDIR, EISDIR, ENOENT', async () => {
    const out = await t(`
os.mkdir(P('r'))
open(P('r/one'), 'w').write('one'); open(P('r/two'), 'w').write('two')
ino = os.stat(P('r/one')).st_ino
out['file over file'] = err(os.rename, P('r/one'), P('r/two'))
out['replaced content'] = open(P('r/two')).read()
out['same inode'] = os.stat(P('r/two')).st_ino == ino
out['old name gone'] = err(os.stat, P('r/one'))
os.mkdir(P('r/d1')); os.mkdir(P('r/d2')); open(P('r/d1/k'), 'w').close()
out['dir over empty dir'] = err(os.rename, P('r/d1'), P('r/d2'))
out['moved children'] = os.listdir(P('r/d2'))
os.mkdir(P('r/d3'))
out['dir over non-empty dir'] = err(os.rename, P('r/d3'), P('r/d2'))
out['dir into own subtree'] = err(os.rename, P('r/d2'), P('r/d2/sub'))
out['dir over file'] = err(os.rename, P('r/d3'), P('r/two'))
out['file over dir'] = err(os.rename, P('r/two'), P('r/d3'))
out['missing source'] = err(os.rename, P('r/nope'), P('r/x'))
out['into missing dir'] = err(os.rename, P('r/two'), P('r/nodir/x'))
out['to 256-byte name'] = err(os.rename, P('r/two'), P('r/' + 'z' * 256))
os.link(P('r/two'), P('r/two-link'))
out['onto own hardlink'] = err(os.rename, P('r/two'), P('r/two-link'))
out['both names stay'] = sorted(n for n in os.listdir(P('r')) if n.startswith('two'))
os.mkdir(P('r/d2/sub'))
out['parent nlink'] = os.stat(P('r/d2')).st_nlink
out['move dir across'] = err(os.rename, P('r/d2/sub'), P('r/d3/sub'))
out['nlinks after'] = [os.stat(P('r/d2')).st_nlink, os.stat(P('r/d3')).st_nlink]
`);
    expect(out).toEqual({
      'file over file': 'OK',
      'replaced content': 'one',
      'same inode': true,
      'old name gone': 'ENOENT',
      'dir over empty dir': 'OK',
      'moved children': ['k'],
      'dir over non-empty dir': 'ENOTEMPTY',
      'dir into own subtree': 'EINVAL',
      'dir over file': 'ENOTDIR',
      'file over dir': 'EISDIR',
      'missing source': 'ENOENT',
      'into missing dir': 'ENOENT',
      'to 256-byte name': 'ENAMETOOLONG',
      'onto own hardlink': 'OK',
      'both names stay': ['two', 'two-link'],
      'parent nlink': 3,
      'move dir across': 'OK',
      'nlinks after': [2, 3],
    });
  });

  it('truncate, ftruncate, utimens with ns and UTIME_OMIT, chmod, chown', async () => {
    const out = await t(`
os.mkdir(P('t'))
fd = os.open(P('t/f'), os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b'a' * 10000)
os.ftruncate(fd, 5000)
out['ftruncate size'] = os.fstat(fd).st_size
os.truncate(P('t/f'), 20000)
os.lseek(fd, 0, 0)
data = os.read(fd, 1 << 20)
out['truncate zero-fills'] = data == b'a' * 5000 + b'\\0' * 15000
os.truncate(P('t/f'), 4095)
os.write(fd, b'')
out['truncate shrink'] = os.stat(P('t/f')).st_size
os.close(fd)
out['truncate dir'] = err(os.truncate, P('t'), 0)
out['truncate missing'] = err(os.truncate, P('t/nope'), 0)
os.utime(P('t/f'), ns=(1234567890123456789, 987654321987654321))
st = os.stat(P('t/f'))
out['utimens ns'] = [str(st.st_atime_ns), str(st.st_mtime_ns)]
arr = (TS * 2)(TS(5, 6), TS(0, UTIME_OMIT))
out['utimensat omit mtime'] = cerr(libc.utimensat(-100, P('t/f').encode(), arr, 0))
st = os.stat(P('t/f'))
out['after omit'] = [str(st.st_atime_ns), str(st.st_mtime_ns)]
arr = (TS * 2)(TS(0, UTIME_OMIT), TS(7, 8))
libc.utimensat(-100, P('t/f').encode(), arr, 0)
st = os.stat(P('t/f'))
out['after omit atime'] = [str(st.st_atime_ns), str(st.st_mtime_ns)]
os.chmod(P('t/f'), 0o4751)
out['chmod'] = oct(os.stat(P('t/f')).st_mode)
os.chown(P('t/f'), 123, 456)
st = os.stat(P('t/f'))
out['chown'] = [st.st_uid, st.st_gid]
out['chown clears setuid'] = oct(stat.S_IMODE(st.st_mode))
out['chmod missing'] = err(os.chmod, P('t/nope'), 0o600)
os.mkdir(P('pub')); os.chmod(P('pub'), 0o1777)
open(P('pub/rootfile'), 'w').write('secret'); os.chmod(P('pub/rootfile'), 0o600)
open(P('pub/shared'), 'w').write('shared'); os.chmod(P('pub/shared'), 0o666)
os.mkdir(P('pub/private')); os.chmod(P('pub/private'), 0o700)
`);
    expect(out).toEqual({
      'ftruncate size': 5000,
      'truncate zero-fills': true,
      'truncate shrink': 4095,
      'truncate dir': 'EISDIR',
      'truncate missing': 'ENOENT',
      'utimens ns': ['1234567890123456789', '987654321987654321'],
      'utimensat omit mtime': 'OK',
      'after omit': ['5000000006', '987654321987654321'],
      'after omit atime': ['5000000006', '7000000008'],
      chmod: '0o104751',
      chown: [123, 456],
      'chown clears setuid': '0o751',
      'chmod missing': 'ENOENT',
    });
  });

  it('open with O_TRUNC empties the file (the kernel sends it with the open, not as a setattr)', async () => {
    const out = await t(`
fd = os.open(P('otrunc'), os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'a' * 300000)
os.fsync(fd)
os.close(fd)
fd = os.open(P('otrunc'), os.O_WRONLY | os.O_TRUNC)
out['size at open'] = os.fstat(fd).st_size
os.write(fd, b'b' * 1000)
os.fsync(fd)
os.close(fd)
out['size'] = os.stat(P('otrunc')).st_size
out['content'] = open(P('otrunc'), 'rb').read() == b'b' * 1000
with open(P('otrunc'), 'w') as f:
    f.write('xy')
out['shell >'] = open(P('otrunc')).read()
`);
    expect(out).toEqual({ 'size at open': 0, size: 1000, content: true, 'shell >': 'xy' });
  });

  it('as another user (allow_other): owner, umask, EACCES and EPERM', async () => {
    const out = await t(
      `
os.umask(0o027)
out['ids'] = [os.getuid(), os.getgid()]
fd = os.open(P('pub/mine'), os.O_CREAT | os.O_WRONLY, 0o666); os.write(fd, b'x'); os.close(fd)
st = os.stat(P('pub/mine'))
out['created as caller'] = [st.st_uid, st.st_gid, oct(stat.S_IMODE(st.st_mode))]
out['chmod own'] = err(os.chmod, P('pub/mine'), 0o600)
out['chown own to other uid'] = err(os.chown, P('pub/mine'), 0, -1)
out['chmod other'] = err(os.chmod, P('pub/rootfile'), 0o777)
out['chown other'] = err(os.chown, P('pub/rootfile'), ${NOBODY}, -1)
out['open 0600 of other'] = err(os.open, P('pub/rootfile'), os.O_RDONLY)
out['access R 0600 of other'] = os.access(P('pub/rootfile'), os.R_OK)
out['open 0666 for write'] = err(lambda: os.close(os.open(P('pub/shared'), os.O_WRONLY)))
out['access W 0666'] = os.access(P('pub/shared'), os.W_OK)
out['utime explicit on other'] = err(os.utime, P('pub/shared'), (1, 1))
out['utime now with write access'] = err(os.utime, P('pub/shared'))
out['utime now on 0600 of other'] = err(os.utime, P('pub/rootfile'))
out['unlink in sticky dir'] = err(os.unlink, P('pub/rootfile'))
out['truncate 0600 of other'] = err(os.truncate, P('pub/rootfile'), 0)
out['list 0700 dir of other'] = err(os.listdir, P('pub/private'))
out['create in 0700 dir of other'] = err(os.open, P('pub/private/x'), os.O_CREAT | os.O_WRONLY)
out['mkdir in root-owned 0755'] = err(os.mkdir, P('nope'))
out['setxattr user. on other file'] = err(os.setxattr, P('pub/rootfile'), 'user.x', b'1')
`,
      NOBODY,
    );
    expect(out).toEqual({
      ids: [NOBODY, NOBODY],
      'created as caller': [NOBODY, NOBODY, '0o640'],
      'chmod own': 'OK',
      'chown own to other uid': 'EPERM',
      'chmod other': 'EPERM',
      'chown other': 'EPERM',
      'open 0600 of other': 'EACCES',
      'access R 0600 of other': false,
      'open 0666 for write': 'OK',
      'access W 0666': true,
      'utime explicit on other': 'EPERM',
      'utime now with write access': 'OK',
      'utime now on 0600 of other': 'EACCES',
      'unlink in sticky dir': 'EPERM',
      'truncate 0600 of other': 'EACCES',
      'list 0700 dir of other': 'EACCES',
      'create in 0700 dir of other': 'EACCES',
      'mkdir in root-owned 0755': 'EACCES',
      'setxattr user. on other file': 'EACCES',
    });
  });

  it('symlink/readlink, hardlinks (same inode, nlink), access', async () => {
    const out = await t(`
os.mkdir(P('l'))
open(P('l/f'), 'w').write('target')
os.symlink('f', P('l/s'))
out['readlink'] = os.readlink(P('l/s'))
out['through link'] = open(P('l/s')).read()
out['lstat is link'] = stat.S_ISLNK(os.lstat(P('l/s')).st_mode)
os.symlink(b'\\xff/odd \\x01 bytes', P('l/raw').encode())
out['raw bytes target'] = os.readlink(P('l/raw').encode()) == b'\\xff/odd \\x01 bytes'
out['symlink existing'] = err(os.symlink, 'f', P('l/s'))
out['readlink of file'] = err(os.readlink, P('l/f'))
out['dangling'] = err(os.stat, P('l/raw'))
os.link(P('l/f'), P('l/h'))
a, b = os.stat(P('l/f')), os.stat(P('l/h'))
out['same inode'] = a.st_ino == b.st_ino
out['nlink'] = [a.st_nlink, b.st_nlink]
os.unlink(P('l/f'))
out['nlink after unlink'] = os.stat(P('l/h')).st_nlink
out['content kept'] = open(P('l/h')).read()
out['link dir'] = err(os.link, P('l'), P('l2'))
out['link onto existing'] = err(os.link, P('l/h'), P('l/s'))
out['link missing'] = err(os.link, P('l/nope'), P('l/x'))
out['access F'] = os.access(P('l/h'), os.F_OK)
out['access X of 0644 (root)'] = os.access(P('l/h'), os.X_OK)
out['access missing'] = os.access(P('l/nope'), os.F_OK)
`);
    expect(out).toEqual({
      readlink: 'f',
      'through link': 'target',
      'lstat is link': true,
      'raw bytes target': true,
      'symlink existing': 'EEXIST',
      'readlink of file': 'EINVAL',
      dangling: 'ENOENT',
      'same inode': true,
      nlink: [2, 2],
      'nlink after unlink': 1,
      'content kept': 'target',
      'link dir': 'EPERM',
      'link onto existing': 'EEXIST',
      'link missing': 'ENOENT',
      'access F': true,
      'access X of 0644 (root)': false,
      'access missing': false,
    });
  });

  it('xattrs: set/get/list/remove, flags, ERANGE, ENODATA; statfs', async () => {
    const out = await t(`
os.mkdir(P('x')); f = P('x/f'); open(f, 'w').write('x')
out['get none'] = err(os.getxattr, f, 'user.k')
out['list none'] = os.listxattr(f)
os.setxattr(f, 'user.k', b'value')
out['get'] = os.getxattr(f, 'user.k').decode()
os.setxattr(f, 'user.bin', bytes(range(256)))
out['binary'] = os.getxattr(f, 'user.bin') == bytes(range(256))
out['list'] = sorted(os.listxattr(f))
out['XATTR_CREATE existing'] = err(os.setxattr, f, 'user.k', b'v', os.XATTR_CREATE)
out['XATTR_REPLACE missing'] = err(os.setxattr, f, 'user.zz', b'v', os.XATTR_REPLACE)
os.setxattr(f, 'user.k', b'longer value', os.XATTR_REPLACE)
out['replaced'] = os.getxattr(f, 'user.k').decode()
buf = ctypes.create_string_buffer(4)
out['get ERANGE'] = cerr(libc.getxattr(f.encode(), b'user.k', buf, 4))
out['get size query'] = libc.getxattr(f.encode(), b'user.k', None, 0)
out['list ERANGE'] = cerr(libc.listxattr(f.encode(), buf, 4))
out['list size query'] = libc.listxattr(f.encode(), None, 0)
os.removexattr(f, 'user.k')
out['after remove'] = os.listxattr(f)
out['remove missing'] = err(os.removexattr, f, 'user.k')
out['get on missing file'] = err(os.getxattr, P('x/nope'), 'user.k')
out['acl xattr with acls off'] = err(os.setxattr, f, 'system.posix_acl_access', b'\\x02\\0\\0\\0')
fd = os.open(f, os.O_WRONLY); os.write(fd, b'written after the negative cache'); os.close(fd)
os.setxattr(f, 'user.late', b'1')
out['set after writes'] = os.getxattr(f, 'user.late').decode()
s = os.statvfs(m)
out['statfs sane'] = s.f_bsize == 4096 and s.f_blocks > 0 and 0 <= s.f_bfree <= s.f_blocks and s.f_bavail <= s.f_bfree and s.f_namemax == 255
before = s.f_bfree
fd = os.open(P('x/fill'), os.O_CREAT | os.O_WRONLY); os.write(fd, b'z' * (4 << 20)); os.fsync(fd); os.close(fd)
# >= 1000, not 1024: the fsync also releases clusters freed by earlier tests.
out['statfs counts usage'] = before - os.statvfs(m).f_bfree >= 1000
`);
    expect(out).toEqual({
      'get none': 'ENODATA',
      'list none': [],
      get: 'value',
      binary: true,
      list: ['user.bin', 'user.k'],
      'XATTR_CREATE existing': 'EEXIST',
      'XATTR_REPLACE missing': 'ENODATA',
      replaced: 'longer value',
      'get ERANGE': 'ERANGE',
      'get size query': 12,
      'list ERANGE': 'ERANGE',
      'list size query': 16,
      'after remove': ['user.bin'],
      'remove missing': 'ENODATA',
      'get on missing file': 'ENOENT',
      'acl xattr with acls off': 'ENOTSUP', // = EOPNOTSUPP on Linux
      'set after writes': '1',
      'statfs sane': true,
      'statfs counts usage': true,
    });
  });

  it('an open but unlinked file stays readable and writable until its last close', async () => {
    const out = await t(`
os.mkdir(P('u'))
data = bytes(range(256)) * 4096
fd = os.open(P('u/f'), os.O_CREAT | os.O_RDWR); os.write(fd, data)
fd2 = os.open(P('u/f'), os.O_RDONLY)
os.unlink(P('u/f'))
out['name gone'] = err(os.stat, P('u/f'))
out['fstat nlink'] = os.fstat(fd).st_nlink
os.lseek(fd, 0, 0)
out['read back'] = os.read(fd, len(data) + 1) == data
os.write(fd, b'tail')
os.close(fd)
os.lseek(fd2, len(data), 0)
out['second fd sees the write'] = os.read(fd2, 10).decode()
os.close(fd2)
out['rmdir right after close'] = err(os.rmdir, P('u'))
`);
    expect(out).toEqual({
      'name gone': 'ENOENT',
      'fstat nlink': 0,
      'read back': true,
      'second fd sees the write': 'tail',
      'rmdir right after close': 'OK',
    });
  });
});

describe('ENOSPC with growth disabled', () => {
  let smallMap: string;
  let small: Mount | null = null;
  afterAll(async () => {
    await umount(small);
    removeDir(small?.mountpoint);
  });

  it('a full map answers ENOSPC, keeps working, and fsck is clean after umount', async () => {
    smallMap = join(work, 'small.png');
    await mkfs(smallMap, '4M');
    small = await mount(smallMap, ['-o', 'nogrow']);
    const out = await py<Record<string, unknown>>(
      `${PRELUDE}
def fill(path):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY)
    written = 0
    try:
        while True:
            written += os.write(fd, b'q' * 65536)
            if written > (64 << 20):
                os.fsync(fd)
                return 'never full', written
    except OSError as e:
        return errno.errorcode[e.errno], written
    finally:
        try: os.close(fd)
        except OSError: pass  # close reports the same write-behind error again
code, n = fill(P('fill'))
out['fill'] = code
out['wrote most of the map'] = n >= (2 << 20)
# Write-behind may report ENOSPC at fsync/close instead of write: either way it is reported.
out['create still works'] = err(lambda: open(P('meta-only'), 'w').close())
out['statfs full'] = os.statvfs(m).f_bavail < 64
os.unlink(P('fill'))
fd = os.open(P('after'), os.O_CREAT | os.O_RDWR); os.write(fd, b'fits again' * 1000); os.fsync(fd)
os.lseek(fd, 0, 0); out['after freeing'] = os.read(fd, 100000) == b'fits again' * 1000; os.close(fd)
code, n = fill(P('fill2'))
out['full again'] = code
os.unlink(P('fill2'))
print(json.dumps(out))
`,
      [small.mountpoint],
    );
    expect(out).toEqual({
      fill: 'ENOSPC',
      'wrote most of the map': true,
      'create still works': 'OK',
      'statfs full': true,
      'after freeing': true,
      'full again': 'ENOSPC',
    });
    const r = await umount(small);
    small = null;
    expect(r?.status).toBe(0);
    const check = await fsck(smallMap);
    expect(check.problems).toEqual([]);
    expect(check.clean).toBe(true);
    expect((await pngcheck(smallMap)).status).toBe(0);
    const info = await imapfs(['info', smallMap, '--json']);
    expect(JSON.parse(info.stdout)).toMatchObject({ usedBytes: expect.any(Number) });
  });
});

describe('EROFS with -o ro', () => {
  let ro: Mount | null = null;
  afterAll(async () => {
    await umount(ro);
    removeDir(ro?.mountpoint);
  });

  it('every mutating op fails with EROFS; reads work', async () => {
    const r = await umount(m);
    expect(r?.status).toBe(0);
    ro = await mount(map, ['-o', 'ro']);
    const out = await py<Record<string, unknown>>(
      `${PRELUDE}
out['read'] = open(P('l/h')).read()
out['create'] = err(os.open, P('new'), os.O_CREAT | os.O_WRONLY)
out['open for write'] = err(os.open, P('l/h'), os.O_WRONLY)
out['mkdir'] = err(os.mkdir, P('newdir'))
out['unlink'] = err(os.unlink, P('l/h'))
out['rmdir'] = err(os.rmdir, P('l'))
out['rename'] = err(os.rename, P('l/h'), P('l/h2'))
out['symlink'] = err(os.symlink, 'x', P('l/s2'))
out['link'] = err(os.link, P('l/h'), P('l/h3'))
out['chmod'] = err(os.chmod, P('l/h'), 0o600)
out['truncate'] = err(os.truncate, P('l/h'), 0)
out['utime'] = err(os.utime, P('l/h'))
out['setxattr'] = err(os.setxattr, P('x/f'), 'user.n', b'1')
out['removexattr'] = err(os.removexattr, P('x/f'), 'user.bin')
out['getxattr'] = len(os.getxattr(P('x/f'), 'user.bin'))
out['statvfs ro flag'] = bool(os.statvfs(m).f_flag & os.ST_RDONLY)
print(json.dumps(out))
`,
      [ro.mountpoint],
    );
    expect(out).toEqual({
      read: 'target',
      create: 'EROFS',
      'open for write': 'EROFS',
      mkdir: 'EROFS',
      unlink: 'EROFS',
      rmdir: 'EROFS',
      rename: 'EROFS',
      symlink: 'EROFS',
      link: 'EROFS',
      chmod: 'EROFS',
      truncate: 'EROFS',
      utime: 'EROFS',
      setxattr: 'EROFS',
      removexattr: 'EROFS',
      getxattr: 256,
      'statvfs ro flag': true,
    });
    const u = await umount(ro);
    ro = null;
    expect(u?.status).toBe(0);
    const check = await fsck(map);
    expect(check.problems).toEqual([]);
  });
});
