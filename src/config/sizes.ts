/** Human byte sizes ("64M", "1GiB", "512k", 4096) as users write them in configs and on the command line. */
import { ImapError } from '../protocol/errors';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Binary units throughout: a filesystem user writing 64M means 64 MiB. */
export function parseSize(input: string | number, what = 'size'): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw new ImapError('IMAP_E_INVALID', `${what}: ${input} is not a non-negative whole number of bytes`);
    }
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new ImapError('IMAP_E_INVALID', `${what}: '${input}' is not a size (examples: 4096, 64M, 1GiB)`);
  }
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new ImapError('IMAP_E_INVALID', `${what}: '${input}' is too large`);
  return bytes;
}

export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}
