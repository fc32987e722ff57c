/** Where a mount's control socket and log live, derived from the mountpoint so any client can find them. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

function runtimeDir(): string {
  const candidates = [process.env.IMAPFS_RUNTIME_DIR, process.getuid?.() === 0 ? '/run/imapfs' : undefined]
    .concat(process.env.XDG_RUNTIME_DIR ? [path.join(process.env.XDG_RUNTIME_DIR, 'imapfs')] : [])
    .concat([path.join(os.tmpdir(), `imapfs-${process.getuid?.() ?? 'user'}`)]);
  for (const dir of candidates) {
    if (!dir) continue;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      return dir;
    } catch {
      continue; // not writable here (e.g. /run for a non-root user): try the next place
    }
  }
  throw new Error('no writable runtime directory for imapfs control sockets');
}

/**
 * Resolves symlinks in the mountpoint's parent only: the mountpoint itself may be a FUSE mount whose
 * daemon is this very process (a stat would deadlock) or is dead or hung (a stat fails or blocks).
 */
export function canonicalMountpoint(mountpoint: string): string {
  const abs = path.resolve(mountpoint);
  try {
    return path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
  } catch {
    return abs;
  }
}

export function controlSocketPath(mountpoint: string): string {
  const id = createHash('sha256').update(canonicalMountpoint(mountpoint)).digest('hex').slice(0, 24);
  return path.join(runtimeDir(), `${id}.sock`);
}

export function defaultLogPath(mapPath: string): string {
  return `${path.resolve(mapPath)}.log`;
}

/** Mount table lookup: the kernel's view, so a dead daemon's mount still shows. */
export function findMount(mountpoint: string): { source: string; type: string } | null {
  const target = canonicalMountpoint(mountpoint);
  const text = fs.readFileSync('/proc/mounts', 'utf8');
  for (const line of text.split('\n')) {
    const [source, mnt, type] = line.split(' ');
    if (!source || !mnt || !type) continue;
    const decoded = mnt.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (decoded === target) return { source, type };
  }
  return null;
}
