/**
 * Every op of the binding, through the in-memory example fs mounted in a child process.
 */
import { constants as C, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { mountMemfs, py, run, type Mounted } from './helpers';

let m: Mounted;
let mp: string;

beforeAll(async () => {
  m = await mountMemfs('allow_other,default_permissions');
  mp = m.mountpoint;
});

// Fails the test that was running when the daemon died or the mount vanished, with the reason.
afterEach(() => m.assertAlive());

afterAll(async () => {
  await m?.unmount();
});

const p = (...parts: string[]) => join(mp, ...parts);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('memfs through the low-level binding', () => {
  test('create, write, read, getattr, release', async () => {
    await fsp.writeFile(p('a.txt'), 'hello world');
    expect(await fsp.readFile(p('a.txt'), 'utf8')).toBe('hello world');
    const st = await fsp.stat(p('a.txt'));
    expect(st.size).toBe(11);
    expect(st.isFile()).toBe(true);
    expect(st.uid).toBe(0);
    const fh = await fsp.open(p('a.txt'), 'r+');
    await fh.write(Buffer.from('HELLO'), 0, 5, 0);
    await fh.sync();
    await fh.datasync();
    await fh.close();
    expect(await fsp.readFile(p('a.txt'), 'utf8')).toBe('HELLO world');
  });

  test('lookup of a missing name is ENOENT; a 256-byte name is ENAMETOOLONG, 255 is fine', async () => {
    await expect(fsp.stat(p('missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(fsp.writeFile(p('x'.repeat(256)), '')).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    await expect(fsp.mkdir(p('y'.repeat(256)))).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    await fsp.writeFile(p('z'.repeat(255)), 'ok');
    expect(await fsp.readFile(p('z'.repeat(255)), 'utf8')).toBe('ok');
  });

  test('mkdir, rmdir, nlink and parent mtime/ctime', async () => {
    const before = await fsp.stat(mp, { bigint: true });
    await sleep(20);
    await fsp.mkdir(p('d1'));
    await fsp.mkdir(p('d1', 'sub'));
    const d1 = await fsp.stat(p('d1'));
    expect(d1.nlink).toBe(3);
    const after = await fsp.stat(mp, { bigint: true });
    expect(after.mtimeNs).toBeGreaterThan(before.mtimeNs);
    expect(after.ctimeNs).toBeGreaterThan(before.ctimeNs);
    await expect(fsp.rmdir(p('d1'))).rejects.toMatchObject({ code: 'ENOTEMPTY' });
    await fsp.rmdir(p('d1', 'sub'));
    expect((await fsp.stat(p('d1'))).nlink).toBe(2);
    await fsp.rmdir(p('d1'));
    await expect(fsp.stat(p('d1'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('unlink, and an open unlinked file stays readable until release', async () => {
    await fsp.writeFile(p('u'), 'still here');
    const out = await py(
      `import os,sys
fd=os.open(sys.argv[1]+'/u', os.O_RDONLY)
os.unlink(sys.argv[1]+'/u')
print(os.path.exists(sys.argv[1]+'/u'), os.pread(fd, 100, 0).decode(), os.fstat(fd).st_nlink)
os.close(fd)`,
      mp,
    );
    expect(out).toBe('False still here 0');
  });

  test('hard links share the inode and nlink', async () => {
    await fsp.writeFile(p('h1'), 'x');
    await fsp.link(p('h1'), p('h2'));
    const [a, b] = await Promise.all([fsp.stat(p('h1')), fsp.stat(p('h2'))]);
    expect(a.ino).toBe(b.ino);
    expect(a.nlink).toBe(2);
    await fsp.unlink(p('h1'));
    expect((await fsp.stat(p('h2'))).nlink).toBe(1);
  });

  test('symlink and readlink', async () => {
    await fsp.symlink('h2', p('sl'));
    expect(await fsp.readlink(p('sl'))).toBe('h2');
    expect(await fsp.readFile(p('sl'), 'utf8')).toBe('x');
    expect((await fsp.lstat(p('sl'))).isSymbolicLink()).toBe(true);
  });

  test('mknod (fifo)', async () => {
    await run('mkfifo', [p('fifo')]);
    expect((await fsp.lstat(p('fifo'))).isFIFO()).toBe(true);
  });

  test('rename, with RENAME_NOREPLACE and RENAME_EXCHANGE', async () => {
    await fsp.writeFile(p('r1'), 'one');
    await fsp.writeFile(p('r2'), 'two');
    const out = await py(
      `import ctypes,os,sys
libc=ctypes.CDLL(None, use_errno=True)
AT=-100
def r(a,b,f):
    rc=libc.renameat2(AT, (sys.argv[1]+'/'+a).encode(), AT, (sys.argv[1]+'/'+b).encode(), f)
    return 0 if rc==0 else ctypes.get_errno()
e1=r('r1','r2',1)
e2=r('r1','r2',2)
print(e1, e2, open(sys.argv[1]+'/r1').read(), open(sys.argv[1]+'/r2').read())`,
      mp,
    );
    expect(out).toBe('17 0 two one');
    await fsp.mkdir(p('rd'));
    await fsp.rename(p('r1'), p('rd', 'moved'));
    expect(await fsp.readFile(p('rd', 'moved'), 'utf8')).toBe('two');
    await fsp.rename(p('r2'), p('rd', 'moved'));
    expect(await fsp.readFile(p('rd', 'moved'), 'utf8')).toBe('one');
    await expect(fsp.rename(p('rd'), p('rd', 'inner'))).rejects.toMatchObject({ code: 'EINVAL' });
  });

  test('readdir lists every entry (plain and plus), with non-UTF-8 names as bytes', async () => {
    await fsp.mkdir(p('many'));
    for (let i = 0; i < 300; i++) await fsp.writeFile(p('many', `f${i}`), '');
    const names = await fsp.readdir(p('many'));
    expect(names.length).toBe(300);
    const out = await py(
      `import os,sys
d=os.fsencode(sys.argv[1])+b'/bytes'
os.mkdir(d)
for n in [b'\\xff\\xfe', b'caf\\xe9', b'caf\\xc3\\xa9']:
    fd=os.open(d+b'/'+n, os.O_CREAT|os.O_WRONLY, 0o644); os.write(fd, n); os.close(fd)
names=sorted(os.listdir(d))
print(names == sorted([b'\\xff\\xfe', b'caf\\xe9', b'caf\\xc3\\xa9']), all(open(d+b'/'+n,'rb').read()==n for n in names))`,
      mp,
    );
    expect(out).toBe('True True');
  });

  test('setattr: chmod, chown, truncate; utimensat with UTIME_OMIT and nanoseconds', async () => {
    await fsp.writeFile(p('t'), '0123456789');
    await fsp.chmod(p('t'), 0o600);
    await fsp.chown(p('t'), 1234, 5678);
    await fsp.truncate(p('t'), 4);
    let st = await fsp.stat(p('t'));
    expect(st.mode & 0o7777).toBe(0o600);
    expect([st.uid, st.gid, st.size]).toEqual([1234, 5678, 4]);
    const out = await py(
      `import os,sys
f=sys.argv[1]+'/t'
os.utime(f, ns=(1000000000123456789, 1100000000987654321))
a=os.stat(f)
os.utime(f, ns=(1200000000000000001, 0), follow_symlinks=True) if False else None
import ctypes
libc=ctypes.CDLL(None, use_errno=True)
class TS(ctypes.Structure): _fields_=[('s',ctypes.c_long),('n',ctypes.c_long)]
UTIME_OMIT=(1<<30)-2
ts=(TS*2)(TS(1300000000,5), TS(0,UTIME_OMIT))
assert libc.utimensat(-100, f.encode(), ts, 0)==0
b=os.stat(f)
ts=(TS*2)(TS(0,UTIME_OMIT), TS(1400000000,7))
assert libc.utimensat(-100, f.encode(), ts, 0)==0
c=os.stat(f)
print(a.st_atime_ns, a.st_mtime_ns, b.st_atime_ns, b.st_mtime_ns, c.st_atime_ns, c.st_mtime_ns)`,
      mp,
    );
    expect(out.split(' ')).toEqual([
      '1000000000123456789',
      '1100000000987654321',
      '1300000000000000005',
      '1100000000987654321',
      '1300000000000000005',
      '1400000000000000007',
    ]);
    const before = await fsp.stat(p('t'), { bigint: true });
    await run('touch', ['-a', p('t')]);
    st = await fsp.stat(p('t'));
    const after = await fsp.stat(p('t'), { bigint: true });
    expect(after.mtimeNs).toBe(before.mtimeNs);
    expect(after.atimeNs).toBeGreaterThan(before.atimeNs);
    await run('touch', ['-m', p('t')]);
    const after2 = await fsp.stat(p('t'), { bigint: true });
    expect(after2.atimeNs).toBe(after.atimeNs);
    expect(after2.mtimeNs).toBeGreaterThan(after.mtimeNs);
  });

  test('xattrs: set/get/list/remove, size query, ERANGE, ENODATA, XATTR_CREATE', async () => {
    await fsp.writeFile(p('x'), '');
    const out = await py(
      `import ctypes,os,sys
f=(sys.argv[1]+'/x').encode()
libc=ctypes.CDLL(None, use_errno=True)
libc.getxattr.restype=ctypes.c_ssize_t
libc.listxattr.restype=ctypes.c_ssize_t
os.setxattr(f, b'user.a', b'\\x00\\xffbinary')
os.setxattr(f, b'user.bb', b'v')
n=libc.getxattr(f, b'user.a', None, 0)
buf=ctypes.create_string_buffer(4)
small=libc.getxattr(f, b'user.a', buf, 4); e1=ctypes.get_errno()
ln=libc.listxattr(f, None, 0)
lsmall=libc.listxattr(f, buf, 4); e2=ctypes.get_errno()
try:
    os.setxattr(f, b'user.a', b'z', os.XATTR_CREATE); e3=0
except OSError as e: e3=e.errno
try:
    os.getxattr(f, b'user.none'); e4=0
except OSError as e: e4=e.errno
v=os.getxattr(f, b'user.a')
os.removexattr(f, b'user.bb')
print(n, small, e1, ln, lsmall, e2, e3, e4, v==b'\\x00\\xffbinary', sorted(os.listxattr(f)))`,
      mp,
    );
    expect(out).toBe("8 -1 34 15 -1 34 17 61 True ['user.a']");
    const { stdout } = await run('getfattr', ['-n', 'user.a', '--only-values', p('x')], {
      encoding: 'buffer',
    });
    expect(Buffer.from(stdout).equals(Buffer.from('\x00\xffbinary', 'latin1'))).toBe(true);
  });

  test('statfs and access', async () => {
    const s = await fsp.statfs(mp);
    expect(s.bsize).toBe(1024 * 1024);
    expect(s.blocks).toBeGreaterThan(0);
    await fsp.access(p('x'), C.R_OK | C.W_OK);
    await fsp.writeFile(p('ro'), '');
    await fsp.chmod(p('ro'), 0o400);
    const out = await py(
      `import os,sys
os.setgid(65534); os.setuid(65534)
print(os.access(sys.argv[1]+'/ro', os.R_OK), os.access(sys.argv[1]+'/x', os.R_OK))`,
      mp,
    );
    expect(out).toBe('False True');
  });

  test('fallocate (allocate, keep size, punch hole), lseek SEEK_HOLE/SEEK_DATA, copy_file_range', async () => {
    const out = await py(
      `import os,sys
f=sys.argv[1]+'/fa'
fd=os.open(f, os.O_CREAT|os.O_RDWR, 0o644)
os.posix_fallocate(fd, 0, 3<<20)
s1=os.fstat(fd).st_size
os.pwrite(fd, b'A'*(3<<20), 0)
import ctypes
libc=ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes=[ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
rc=libc.fallocate(fd, 3, 1<<20, 4096)
mid=os.pread(fd, 4098, (1<<20)-1)
rc2=libc.fallocate(fd, 1, 0, 8<<20)
s2=os.fstat(fd).st_size
hole=os.lseek(fd, 0, os.SEEK_HOLE)
data=os.lseek(fd, 5, os.SEEK_DATA)
g=os.open(sys.argv[1]+'/fb', os.O_CREAT|os.O_RDWR, 0o644)
n=os.copy_file_range(fd, g, 100, 10, 0)
print(s1, rc, mid==b'A'+b'\\0'*4096+b'A', rc2, s2, hole, data, n, os.pread(g, 200, 0)==b'A'*100)
os.close(fd); os.close(g)`,
      mp,
    );
    expect(out).toBe(`${3 << 20} 0 True 0 ${3 << 20} ${3 << 20} 5 100 True`);
  });

  test('large sequential write and read back (1 MiB blocks), and sparse reads', async () => {
    const size = 8 * 1024 * 1024 + 123;
    const data = Buffer.alloc(size);
    for (let i = 0; i + 4 <= size; i += 4) data.writeUInt32LE(i, i);
    await fsp.writeFile(p('big'), data);
    const back = await fsp.readFile(p('big'));
    expect(back.equals(data)).toBe(true);
    const fh = await fsp.open(p('sparse'), 'w+');
    await fh.write(Buffer.from('end'), 0, 3, 5 * 1024 * 1024);
    await fh.write(Buffer.from('x'), 0, 1, 0);
    const { buffer } = await fh.read(Buffer.alloc(16), 0, 16, 2 * 1024 * 1024 - 8);
    await fh.close();
    expect(buffer.equals(Buffer.alloc(16))).toBe(true);
    expect((await fsp.stat(p('sparse'))).size).toBe(5 * 1024 * 1024 + 3);
  });

  test('the caller uid/gid owns a file created under setpriv (allow_other)', async () => {
    await fsp.mkdir(p('pub'));
    await fsp.chmod(p('pub'), 0o1777);
    await run('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'touch',
      p('pub', 'nobody-file'),
    ]);
    const st = await fsp.stat(p('pub', 'nobody-file'));
    expect([st.uid, st.gid]).toEqual([65534, 65534]);
    await run('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'mkdir',
      p('pub', 'nobody-dir'),
    ]);
    expect((await fsp.stat(p('pub', 'nobody-dir'))).uid).toBe(65534);
    await expect(
      run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'touch', p('a.txt')]),
    ).rejects.toBeTruthy();
  });

  test('16 concurrent processes doing mixed ops', async () => {
    const script = `
set -e
d="$1/conc$2"; mkdir "$d"
for i in $(seq 1 40); do
  head -c $((i * 1000)) /dev/urandom > "$d/f$i"
  cp "$d/f$i" "$d/g$i"
  cmp "$d/f$i" "$d/g$i"
  mv "$d/g$i" "$d/h$i"
  ln "$d/h$i" "$d/l$i"
  stat "$d/l$i" > /dev/null
  rm "$d/h$i" "$d/l$i"
done
ls "$d" | wc -l
`;
    const jobs = Array.from({ length: 16 }, (_, k) => run('bash', ['-c', script, 'conc', mp, String(k)]));
    const outs = await Promise.all(jobs);
    for (const o of outs) expect(o.stdout.trim()).toBe('40');
  });
});
