/**
 * FuseSession: one mount. It turns native requests into typed calls on `LowLevelOps`.
 *
 *   FuseSession.mount() ──▶ mounted ──unmount()/close()──▶ closed      ('unmount' event, err 0)
 *                              │
 *                              └── kernel ends the session (fusermount3 -u, abort, protocol
 *                                  error) ──▶ closed                      ('unmount' event, errno)
 *
 * A request that an op neither answers nor rejects stays pending until the session closes; close
 * answers it with EIO. An op that throws or rejects is answered with the error's errno (see
 * `errnoOf`); answering twice is harmless (the second reply returns false).
 */
import { EventEmitter } from 'node:events';
import { errnoOf, native, OP, reply, setReplyDefaults, type NativeSession, type OpName } from './binding';
import type {
  ConnInfo,
  FuseRequest,
  LowLevelOps,
  MountOptions,
  OpResult,
  ReplyKind,
  ReqHandle,
  SetAttrValues,
} from './types';

interface SessionEvents {
  init: [conn: ConnInfo];
  /**
   * The kernel has finished INIT: it sends no other request before, so this fires with the first
   * one. Settings the kernel overwrites while it processes the INIT reply (the bdi's read-ahead)
   * stick only from here on.
   */
  ready: [];
  /** errno 0 for an unmount asked for by this process. */
  unmount: [errno: number];
  error: [err: Error];
}

const MAX_WRITE_LIMIT = 1024 * 1024;

function mountArgs(o: MountOptions): string[] {
  const opts: string[] = [`fsname=${o.fsname ?? 'imapfs'}`, `subtype=${o.subtype ?? 'imapfs'}`];
  if (o.allowOther) opts.push('allow_other');
  if (o.defaultPermissions) opts.push('default_permissions');
  if (o.readOnly) opts.push('ro');
  for (const x of o.extraOptions ?? []) opts.push(x);
  for (const x of opts) if (/[,\\]/.test(x.replace(/^[^=]*=/, ''))) throw new Error(`bad mount option: ${x}`);
  return ['-o', opts.join(',')];
}

/** The ops implemented by `ops`, as native op codes (the rest are answered by libfuse). */
function implementedOps(ops: LowLevelOps): number[] {
  const codes: number[] = [];
  for (const name of Object.keys(OP) as OpName[]) {
    const key = name === 'forgetMulti' ? 'forget' : name;
    if (typeof (ops as Record<string, unknown>)[key] === 'function') codes.push(OP[name]);
  }
  return codes;
}

export class FuseSession extends EventEmitter<SessionEvents> {
  readonly mountpoint: string;
  private readonly ops: LowLevelOps;
  private handle: NativeSession | null = null;
  private conn: ConnInfo | null = null;
  private readyEmitted = false;

  private constructor(mountpoint: string, ops: LowLevelOps) {
    super();
    this.mountpoint = mountpoint;
    this.ops = ops;
  }

  /** Mounts `ops` on `mountpoint` (synchronously; the kernel's INIT arrives as the 'init' event). */
  static mount(mountpoint: string, ops: LowLevelOps, options: MountOptions = {}): FuseSession {
    const maxWrite = options.maxWrite ?? MAX_WRITE_LIMIT;
    if (!(maxWrite >= 4096 && maxWrite <= MAX_WRITE_LIMIT))
      throw new RangeError('maxWrite must be 4 KiB … 1 MiB');
    setReplyDefaults({ entryTimeout: options.entryTimeout, attrTimeout: options.attrTimeout });
    const s = new FuseSession(mountpoint, ops);
    s.handle = native.mount(
      mountpoint,
      mountArgs(options),
      implementedOps(ops),
      {
        maxWrite,
        writebackCache: options.writebackCache ?? false,
        posixAcl: options.posixAcl ?? false,
        autoInvalData: options.autoInvalData ?? false,
        maxBackground: options.maxBackground,
        congestionThreshold: options.congestionThreshold,
      },
      (op, handle, uid, gid, pid, umask, a, b, c, d, e, f, g, h) =>
        s.dispatch(op, handle, uid, gid, pid, umask, a, b, c, d, e, f, g, h),
    );
    if (options.ref === false) native.ref(s.handle, false);
    return s;
  }

  get mounted(): boolean {
    return this.handle !== null;
  }

  /** What the kernel agreed to, once 'init' has fired. */
  get connection(): ConnInfo | null {
    return this.conn;
  }

  /** Whether the mounted session keeps the process alive. */
  ref(on: boolean): void {
    if (this.handle) native.ref(this.handle, on);
  }

  /**
   * Unmounts (lazily, as `umount -l`: open files elsewhere get ENOTCONN) and stops the session.
   * Requests still pending are answered with EIO. Safe to call twice.
   */
  unmount(): void {
    this.end(0);
  }

  private end(errno: number): void {
    const h = this.handle;
    if (!h) return;
    this.handle = null;
    native.close(h);
    try {
      this.ops.destroy?.();
    } finally {
      this.emit('unmount', errno);
    }
  }

  private run(handle: number, result: OpResult): void {
    if (result && typeof result.then === 'function') {
      result.then(undefined, (err: unknown) => {
        reply.err(handle as ReqHandle<ReplyKind>, errnoOf(err));
      });
    }
  }

  // The native side passes positional arguments per op (see call_js in imapfs_fuse.c).
  private dispatch(
    op: number,
    handle: number,
    uid: number,
    gid: number,
    pid: number,
    umask: number,
    a: unknown,
    b: unknown,
    c: unknown,
    d: unknown,
    e: unknown,
    f: unknown,
    g: unknown,
    h: unknown,
  ): void {
    const ops = this.ops;
    const req = { handle, uid, gid, pid, umask } as FuseRequest<never>;
    const n = (v: unknown) => v as number;
    const buf = (v: unknown) => v as Buffer;
    const fh = (v: unknown) => (v === -1 ? null : (v as number));
    try {
      if (!this.readyEmitted && op !== OP.init && this.conn !== null) {
        this.readyEmitted = true;
        this.emit('ready');
      }
      switch (op) {
        case OP.init:
          this.conn = {
            protoMajor: n(a),
            protoMinor: n(b),
            capable: n(c),
            want: n(d),
            maxWrite: n(e),
            maxRead: n(f),
            maxReadahead: n(g),
          };
          ops.init?.(this.conn);
          this.emit('init', this.conn);
          return;
        case OP.exit:
          this.end(n(a));
          return;
        case OP.destroy:
          return;
        case OP.forget:
          ops.forget?.(n(a), n(b));
          return;
        case OP.forgetMulti: {
          const list = a as Float64Array;
          for (let i = 0; i < list.length; i += 2) ops.forget?.(list[i]!, list[i + 1]!);
          return;
        }
        case OP.lookup:
          return this.run(handle, ops.lookup!(req, n(a), buf(b)));
        case OP.getattr:
          return this.run(handle, ops.getattr!(req, n(a), fh(b)));
        case OP.setattr: {
          const v = b as Float64Array;
          const values: SetAttrValues = {
            mode: v[1]!,
            uid: v[3]!,
            gid: v[4]!,
            size: v[6]!,
            atime: { sec: v[9]!, nsec: v[10]! },
            mtime: { sec: v[11]!, nsec: v[12]! },
            ctime: { sec: v[13]!, nsec: v[14]! },
          };
          return this.run(handle, ops.setattr!(req, n(a), values, n(c), fh(d)));
        }
        case OP.readlink:
          return this.run(handle, ops.readlink!(req, n(a)));
        case OP.mknod:
          return this.run(handle, ops.mknod!(req, n(a), buf(b), n(c), n(d)));
        case OP.mkdir:
          return this.run(handle, ops.mkdir!(req, n(a), buf(b), n(c)));
        case OP.unlink:
          return this.run(handle, ops.unlink!(req, n(a), buf(b)));
        case OP.rmdir:
          return this.run(handle, ops.rmdir!(req, n(a), buf(b)));
        case OP.symlink:
          return this.run(handle, ops.symlink!(req, buf(a), n(b), buf(c)));
        case OP.rename:
          return this.run(handle, ops.rename!(req, n(a), buf(b), n(c), buf(d), n(e)));
        case OP.link:
          return this.run(handle, ops.link!(req, n(a), n(b), buf(c)));
        case OP.open:
          return this.run(handle, ops.open!(req, n(a), n(b)));
        case OP.read:
          return this.run(handle, ops.read!(req, n(a), n(b), n(c), n(d)));
        case OP.write:
          return this.run(handle, ops.write!(req, n(a), buf(b), n(c), n(d), n(e), f === 1));
        case OP.flush:
          return this.run(handle, ops.flush!(req, n(a), n(b), n(c)));
        case OP.release:
          return this.run(handle, ops.release!(req, n(a), n(b), n(c)));
        case OP.fsync:
          return this.run(handle, ops.fsync!(req, n(a), b !== 0, n(c)));
        case OP.opendir:
          return this.run(handle, ops.opendir!(req, n(a), n(b)));
        case OP.readdir:
          return this.run(handle, ops.readdir!(req, n(a), n(b), n(c), n(d)));
        case OP.readdirplus:
          return this.run(handle, ops.readdirplus!(req, n(a), n(b), n(c), n(d)));
        case OP.releasedir:
          return this.run(handle, ops.releasedir!(req, n(a), n(b)));
        case OP.fsyncdir:
          return this.run(handle, ops.fsyncdir!(req, n(a), b !== 0, n(c)));
        case OP.statfs:
          return this.run(handle, ops.statfs!(req, n(a)));
        case OP.setxattr:
          return this.run(handle, ops.setxattr!(req, n(a), buf(b), buf(c), n(d)));
        case OP.getxattr:
          return this.run(handle, ops.getxattr!(req, n(a), buf(b), n(c)));
        case OP.listxattr:
          return this.run(handle, ops.listxattr!(req, n(a), n(b)));
        case OP.removexattr:
          return this.run(handle, ops.removexattr!(req, n(a), buf(b)));
        case OP.access:
          return this.run(handle, ops.access!(req, n(a), n(b)));
        case OP.create:
          return this.run(handle, ops.create!(req, n(a), buf(b), n(c), n(d)));
        case OP.fallocate:
          return this.run(handle, ops.fallocate!(req, n(a), n(b), n(c), n(d), n(e)));
        case OP.copyFileRange:
          return this.run(handle, ops.copyFileRange!(req, n(a), n(b), n(c), n(d), n(e), n(f), n(g), n(h)));
        case OP.lseek:
          return this.run(handle, ops.lseek!(req, n(a), n(b), n(c), n(d)));
        default:
          reply.err(handle as ReqHandle<ReplyKind>, 38 /* ENOSYS */);
      }
    } catch (err) {
      if (handle !== 0) reply.err(handle as ReqHandle<ReplyKind>, errnoOf(err));
      else this.emit('error', err instanceof Error ? err : new Error(String(err)));
    }
  }
}
