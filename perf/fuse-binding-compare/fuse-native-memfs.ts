/**
 * The same MemFs logic (src/fuse/memfs) mounted through fuse-native 2.2.6 (libfuse2, high-level,
 * path-based), for the comparison in compare.sh. fuse-native is not a dependency of this project:
 * it is loaded from FUSE_NATIVE_DIR (e.g. /tmp/fn-cmp/node_modules/fuse-native).
 *
 *   FUSE_NATIVE_DIR=… node --require tsx/cjs perf/fuse-binding-compare/fuse-native-memfs.ts MOUNTPOINT
 *
 * Options given to fuse-native: allow_other, and (smuggled through fsname, as its users do)
 * big_writes, max_write=131072 (libfuse2's maximum), entry_timeout/attr_timeout from
 * FN_TIMEOUT (default 0, like the binding's side of compare.sh).
 */
import { MemFs, FsErrno } from '../../src/fuse/memfs/memfs';

type Cb = (code: number, ...rest: unknown[]) => void;
interface FuseNativeStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atime: Date;
  mtime: Date;
  ctime: Date;
}
interface FuseNativeInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
type FuseNativeCtor = new (
  mnt: string,
  ops: Record<string, unknown>,
  opts: Record<string, unknown>,
) => FuseNativeInstance;

const dir = process.env.FUSE_NATIVE_DIR;
if (!dir) throw new Error('set FUSE_NATIVE_DIR to the fuse-native package directory');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Fuse = require(dir) as FuseNativeCtor;

const mnt = process.argv[2];
if (!mnt) throw new Error('usage: fuse-native-memfs.ts MOUNTPOINT');
const timeout = process.env.FN_TIMEOUT ?? '0';

const fs = new MemFs({ uid: 0, gid: 0 });
const O_CREAT_WRONLY = 0o101;

function resolvePath(path: string): number {
  let ino = 1;
  for (const part of path.split('/')) if (part) ino = fs.lookup(ino, Buffer.from(part)).ino;
  return ino;
}
function split(path: string): [number, Buffer] {
  const i = path.lastIndexOf('/');
  return [resolvePath(path.slice(0, i)), Buffer.from(path.slice(i + 1))];
}
function code(err: unknown): number {
  if (err instanceof FsErrno) return -err.errno;
  throw err;
}
const ms = (t: { sec: number; nsec: number }) => new Date(t.sec * 1000 + t.nsec / 1e6);
function statOf(ino: number): FuseNativeStat {
  const a = fs.attr(fs.inode(ino));
  return { ...a, atime: ms(a.atime), mtime: ms(a.mtime), ctime: ms(a.ctime) };
}
/** Runs `f`; answers cb(0, …result) or cb(-errno). */
function wrap(cb: Cb, f: () => unknown[]): void {
  let out: unknown[];
  try {
    out = f();
  } catch (err) {
    cb(code(err));
    return;
  }
  cb(0, ...out);
}

const ops: Record<string, unknown> = {
  getattr: (path: string, cb: Cb) => wrap(cb, () => [statOf(resolvePath(path))]),
  fgetattr: (path: string, _fd: number, cb: Cb) => wrap(cb, () => [statOf(resolvePath(path))]),
  readdir: (path: string, cb: Cb) =>
    wrap(cb, () => {
      const ino = resolvePath(path);
      const fh = fs.opendir(ino);
      const names = fs.readdir(fh, ino, 2, Infinity).map((e) => e.name.toString());
      fs.releasedir(fh);
      return [names];
    }),
  open: (path: string, flags: number, cb: Cb) => wrap(cb, () => [fs.open(resolvePath(path), flags)]),
  create: (path: string, mode: number, cb: Cb) =>
    wrap(cb, () => {
      const [parent, name] = split(path);
      return [fs.create(parent, name, mode, O_CREAT_WRONLY, 0, 0)[1]];
    }),
  read: (path: string, _fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
    try {
      const data = fs.read(resolvePath(path), len, pos);
      data.copy(buf);
      cb(data.length);
    } catch (err) {
      cb(code(err));
    }
  },
  write: (path: string, _fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
    try {
      cb(fs.write(resolvePath(path), buf.subarray(0, len), pos));
    } catch (err) {
      cb(code(err));
    }
  },
  release: (_path: string, fd: number, cb: Cb) => {
    fs.release(fd);
    cb(0);
  },
  flush: (_path: string, _fd: number, cb: Cb) => cb(0),
  fsync: (_path: string, _fd: number, _datasync: boolean, cb: Cb) => cb(0),
  truncate: (path: string, size: number, cb: Cb) =>
    wrap(cb, () => {
      fs.setattr(resolvePath(path), { size } as Parameters<MemFs['setattr']>[1], 1 << 3);
      return [];
    }),
  ftruncate: (path: string, _fd: number, size: number, cb: Cb) =>
    wrap(cb, () => {
      fs.setattr(resolvePath(path), { size } as Parameters<MemFs['setattr']>[1], 1 << 3);
      return [];
    }),
  utimens: (path: string, atime: number, mtime: number, cb: Cb) =>
    wrap(cb, () => {
      const t = (v: number) => ({ sec: Math.floor(v / 1000), nsec: (v % 1000) * 1e6 });
      fs.setattr(
        resolvePath(path),
        { atime: t(atime), mtime: t(mtime) } as Parameters<MemFs['setattr']>[1],
        0x30,
      );
      return [];
    }),
  unlink: (path: string, cb: Cb) => wrap(cb, () => (fs.unlink(...split(path)), [])),
  mkdir: (path: string, mode: number, cb: Cb) =>
    wrap(cb, () => {
      const [parent, name] = split(path);
      fs.mknod(parent, name, 0o040000 | mode, 0, 0, 0);
      return [];
    }),
  rmdir: (path: string, cb: Cb) => wrap(cb, () => (fs.rmdir(...split(path)), [])),
  rename: (src: string, dest: string, cb: Cb) =>
    wrap(cb, () => {
      const [p1, n1] = split(src);
      const [p2, n2] = split(dest);
      fs.rename(p1, n1, p2, n2, 0);
      return [];
    }),
  statfs: (_path: string, cb: Cb) =>
    cb(0, {
      bsize: 1 << 20,
      frsize: 1 << 20,
      blocks: 1 << 24,
      bfree: 1 << 24,
      bavail: 1 << 24,
      files: 1 << 30,
      ffree: 1 << 30,
      favail: 1 << 30,
      fsid: 0,
      flag: 0,
      namemax: 255,
    }),
};

const fuse = new Fuse(mnt, ops, {
  force: true,
  mkdir: true,
  allowOther: true,
  fsname: `fnmemfs,big_writes,max_write=131072,entry_timeout=${timeout},attr_timeout=${timeout}`,
});
fuse.mount((err) => {
  if (err) {
    process.stderr.write(`fuse-native mount failed: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write('ready\n');
});
const stop = () => fuse.unmount(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
