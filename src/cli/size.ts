/** Parses sizes such as 4096, 512K, 64M, 1G (binary units) and formats byte counts for people. */
import { Option } from 'commander';
import { ImapError } from '../protocol/errors';

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  const unit = m ? UNITS[(m[2] ?? '').toUpperCase()] : undefined;
  if (!m || unit === undefined) {
    throw new ImapError(
      'IMAP_E_USAGE',
      `size ${JSON.stringify(text)}: use a number with an optional K, M, G or T`,
    );
  }
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new ImapError('IMAP_E_USAGE', `size ${text}`);
  return bytes;
}

/** The CLI's --chunk-size: the same default as io.chunk_bytes. */
const CHUNK_SIZE_DEFAULT = '1M';
const CHUNK_MIN = 4096;
const CHUNK_MAX = 64 * 2 ** 20;

/** The --chunk-size option of put, get, import and export (parsed by parseChunkSize). */
export function chunkSizeOption(): Option {
  return new Option(
    '--chunk-size <size>',
    'bytes per read and write between host and map (4K…64M, whole 4K)',
  ).default(CHUNK_SIZE_DEFAULT);
}

/** A chunk size: whole clusters (a multiple of 4096), 4K to 64M. */
export function parseChunkSize(text: string): number {
  const bytes = parseSize(text);
  if (bytes % CHUNK_MIN !== 0 || bytes < CHUNK_MIN || bytes > CHUNK_MAX) {
    throw new ImapError('IMAP_E_USAGE', `chunk size ${text}: use a multiple of 4K between 4K and 64M`);
  }
  return bytes;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}
