/**
 * Mounts the in-memory example filesystem:
 *   node dist/fuse/memfs/main.js MOUNTPOINT [-o opt,opt…]      (or: npx tsx src/fuse/memfs/main.ts …)
 *
 * Options (-o, comma-separated): allow_other, default_permissions, ro, writeback, acl,
 * max_write=N, entry_timeout=S, attr_timeout=S, fsname=X, subtype=X; anything else is passed to
 * libfuse as a mount option. Prints "ready" on stdout once the kernel's INIT has been answered;
 * unmounts on SIGINT/SIGTERM, and exits when unmounted from outside (`fusermount3 -u`).
 */
import { MemFs, memFsOps } from './memfs';
import { FuseSession } from '../session';
import type { MountOptions } from '../types';

function parseOptions(list: string[]): MountOptions {
  const o: MountOptions = { extraOptions: [] };
  for (const opt of list.flatMap((s) => s.split(',')).filter(Boolean)) {
    const [k, v] = opt.split('=', 2) as [string, string | undefined];
    switch (k) {
      case 'allow_other':
        o.allowOther = true;
        break;
      case 'default_permissions':
        o.defaultPermissions = true;
        break;
      case 'ro':
        o.readOnly = true;
        break;
      case 'writeback':
        o.writebackCache = true;
        break;
      case 'acl':
        o.posixAcl = true;
        break;
      case 'max_write':
        o.maxWrite = Number(v);
        break;
      case 'entry_timeout':
        o.entryTimeout = Number(v);
        break;
      case 'attr_timeout':
        o.attrTimeout = Number(v);
        break;
      case 'fsname':
        o.fsname = v;
        break;
      case 'subtype':
        o.subtype = v;
        break;
      default:
        o.extraOptions!.push(opt);
    }
  }
  return o;
}

function main(argv: string[]): void {
  const mountpoint = argv.find((a, i) => !a.startsWith('-') && argv[i - 1] !== '-o');
  const opts: string[] = [];
  argv.forEach((a, i) => {
    if (a === '-o' && argv[i + 1]) opts.push(argv[i + 1]!);
  });
  if (!mountpoint) {
    process.stderr.write('usage: memfs MOUNTPOINT [-o allow_other,default_permissions,writeback,…]\n');
    process.exit(2);
  }
  const options = parseOptions(opts);
  const fs = new MemFs({ uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
  const session = FuseSession.mount(mountpoint, memFsOps(fs), {
    fsname: 'memfs',
    subtype: 'memfs',
    ...options,
  });
  session.on('init', (conn) => {
    process.stdout.write(`ready max_write=${conn.maxWrite} want=0x${conn.want.toString(16)}\n`);
  });
  session.on('unmount', (errno) => {
    process.stderr.write(errno ? `memfs: session ended (errno ${errno})\n` : '');
    process.exit(errno ? 1 : 0);
  });
  const stop = () => session.unmount();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main(process.argv.slice(2));
