/**
 * pax extended header records (`"%d %s=%s\n"`, the length counting the whole record) and the pax
 * time format (`seconds[.fraction]`, possibly negative).
 *
 * Values stay bytes. POSIX says `path`/`linkpath` are UTF-8 unless `hdrcharset=BINARY`; GNU tar
 * writes a name that is not UTF-8 as its raw bytes without `hdrcharset`. Reading every value as
 * bytes handles both (UTF-8 text is its own bytes), so a name round-trips byte for byte.
 */
import { ImapError } from '../../protocol/errors';

export type PaxRecords = Map<string, Buffer>;

const NS_PER_S = 1_000_000_000n;

export function encodePax(records: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    const body = 1 + Buffer.byteLength(key) + 1 + value.length + 1; // " key=value\n"
    // The length counts its own digits: one more digit at most moves it once more.
    let len = body + String(body).length;
    if (String(len).length !== String(body).length) len = body + String(len).length;
    parts.push(Buffer.from(`${len} ${key}=`), value, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** Parses a pax header's data into `into` (later records win; an empty value removes the key). */
export function decodePax(data: Buffer, offset: number, into: PaxRecords): void {
  let at = 0;
  while (at < data.length) {
    // Some writers pad the data with NULs after the last record.
    if (data[at] === 0) break;
    const space = data.indexOf(0x20, at);
    const lenText = space < 0 ? '' : data.toString('latin1', at, space);
    const len = /^[0-9]{1,9}$/.test(lenText) ? Number(lenText) : -1;
    const end = at + len;
    if (len <= lenText.length + 1 || end > data.length || data[end - 1] !== 0x0a) {
      throw new ImapError('IMAP_E_ARCHIVE_CORRUPT', `malformed pax record in the header at byte ${offset}`);
    }
    const eq = data.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= end - 1) {
      throw new ImapError('IMAP_E_ARCHIVE_CORRUPT', `pax record without "=" in the header at byte ${offset}`);
    }
    const key = data.toString('utf8', space + 1, eq);
    const value = Buffer.from(data.subarray(eq + 1, end - 1));
    if (value.length === 0) into.delete(key);
    else into.set(key, value);
    at = end;
  }
}

/** Nanoseconds as a pax time: whole seconds, or nine fraction digits when there is a fraction. */
export function formatPaxTime(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  const frac = abs % NS_PER_S;
  const whole = abs / NS_PER_S;
  return frac === 0n ? `${sign}${whole}` : `${sign}${whole}.${frac.toString().padStart(9, '0')}`;
}

/** A pax time in nanoseconds; digits past the ninth are dropped (truncated toward zero). */
export function parsePaxTime(value: Buffer, key: string, offset: number): bigint {
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(value.toString('latin1'));
  if (!m) {
    throw new ImapError('IMAP_E_ARCHIVE_CORRUPT', `pax ${key} is not a time in the header at byte ${offset}`);
  }
  const ns = BigInt(m[2] ?? '0') * NS_PER_S + BigInt((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  return m[1] === '-' ? -ns : ns;
}

/** A non-negative pax integer (`size`, `uid`, `gid`). */
export function parsePaxInteger(value: Buffer, key: string, offset: number): number {
  const text = value.toString('latin1');
  if (!/^[0-9]{1,16}$/.test(text) || Number(text) > Number.MAX_SAFE_INTEGER) {
    throw new ImapError(
      'IMAP_E_ARCHIVE_CORRUPT',
      `pax ${key} ${JSON.stringify(text)} in the header at byte ${offset}`,
    );
  }
  return Number(text);
}
