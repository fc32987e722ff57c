/**
 * The kernel's read-ahead for a FUSE mount is its backing device's `read_ahead_kb` (128 KiB by
 * default), so sequential reads reach the daemon as 128 KiB requests, each paying the full trip
 * through the actors. Raising it to the FUSE max_read (1 MiB) lets one request carry 8× the data;
 * the kernel still adapts the window to the access pattern (it grows only while reads stay sequential).
 *
 * The device number comes from /proc/self/mountinfo: stat(2) on our own mountpoint from this process
 * would wait for this process's own reply.
 */
import * as fs from 'node:fs';
import { canonicalMountpoint } from './paths';

function unescapeMountinfo(s: string): string {
  return s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function mountDevice(mountpoint: string): string | null {
  const target = canonicalMountpoint(mountpoint);
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length > 4 && unescapeMountinfo(f[4]!) === target) return f[2]!;
  }
  return null;
}

/** Returns the read-ahead now in force (KiB), or throws why it could not be set. */
export function setReadAhead(mountpoint: string, kib: number): number {
  const dev = mountDevice(mountpoint);
  if (!dev) throw new Error(`${mountpoint} is not in /proc/self/mountinfo`);
  const file = `/sys/class/bdi/${dev}/read_ahead_kb`;
  fs.writeFileSync(file, String(kib));
  return Number(fs.readFileSync(file, 'utf8').trim());
}
