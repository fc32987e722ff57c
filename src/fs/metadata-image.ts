/**
 * The whole metadata store as one compact Buffer: the payload of the map's imMD chunk (the map layer
 * deflates it), and the source a lost or stale sidecar is rebuilt from.
 *
 *   "IMFSMETA" | u16 image version | u16 section count
 *   section:  u8 table id | u32 row count | u32 byte length | rows
 *   row:      the table's columns in order, each  int: zigzag LEB128 varint (i64)
 *                                                   nint: 0 = NULL, else zigzag(v) + 1
 *                                                   blob/text: varint length + bytes
 *                                                   any: u8 tag (0 int, 1 text) + value
 *
 * Unknown table ids are skipped (byte length), so a newer writer can add tables. Integers are read
 * with BigInt, so nanosecond times survive exactly.
 */
import { renameSync, rmSync } from 'node:fs';
import { ImapError } from '../protocol/errors';
import { MetadataStore, migrate, openDb } from './store';

const MAGIC = Buffer.from('IMFSMETA', 'latin1');
export const IMAGE_VERSION = 1;

type Kind = 'int' | 'nint' | 'blob' | 'text' | 'any';

interface TableSpec {
  id: number;
  table: string;
  /** Rows are written in this order, so equal stores give equal images. */
  order: string;
  columns: readonly [string, Kind][];
}

const TABLES: readonly TableSpec[] = [
  {
    id: 1,
    table: 'meta',
    order: 'key',
    columns: [
      ['key', 'text'],
      ['value', 'any'],
    ],
  },
  {
    id: 2,
    table: 'inodes',
    order: 'ino',
    columns: [
      ['ino', 'int'],
      ['mode', 'int'],
      ['uid', 'int'],
      ['gid', 'int'],
      ['nlink', 'int'],
      ['size', 'int'],
      ['rdev', 'int'],
      ['flags', 'int'],
      ['atime_ns', 'int'],
      ['mtime_ns', 'int'],
      ['ctime_ns', 'int'],
      ['btime_ns', 'int'],
      ['generation', 'int'],
    ],
  },
  {
    id: 3,
    table: 'dirents',
    order: 'parent, name',
    columns: [
      ['parent', 'int'],
      ['name', 'blob'],
      ['ino', 'int'],
      ['type', 'int'],
      ['cookie', 'int'],
    ],
  },
  {
    id: 4,
    table: 'symlinks',
    order: 'ino',
    columns: [
      ['ino', 'int'],
      ['target', 'blob'],
    ],
  },
  {
    id: 5,
    table: 'xattrs',
    order: 'ino, name',
    columns: [
      ['ino', 'int'],
      ['name', 'blob'],
      ['value', 'blob'],
    ],
  },
  {
    id: 6,
    table: 'extents',
    order: 'id',
    columns: [
      ['id', 'int'],
      ['ino', 'int'],
      ['file_cluster', 'int'],
      ['first_cluster', 'int'],
      ['length', 'int'],
      ['birth_gen', 'int'],
      ['death_gen', 'nint'],
      ['flags', 'int'],
      ['crcs', 'blob'],
    ],
  },
  {
    id: 7,
    table: 'free_extents',
    order: 'start',
    columns: [
      ['start', 'int'],
      ['length', 'int'],
    ],
  },
  {
    id: 8,
    table: 'pending_free',
    order: 'start',
    columns: [
      ['start', 'int'],
      ['length', 'int'],
    ],
  },
  {
    id: 9,
    table: 'reserved',
    order: 'start',
    columns: [
      ['start', 'int'],
      ['length', 'int'],
    ],
  },
  {
    id: 10,
    table: 'snapshots',
    order: 'id',
    columns: [
      ['id', 'int'],
      ['name', 'text'],
      ['generation', 'int'],
      ['created_ns', 'int'],
    ],
  },
  // AUTOINCREMENT counters, so inode numbers stay never-reused after a rebuild.
  {
    id: 11,
    table: 'sqlite_sequence',
    order: 'name',
    columns: [
      ['name', 'text'],
      ['seq', 'int'],
    ],
  },
];

type Value = bigint | Buffer | string | null;

/** The tables that describe files (not space accounting): equal in a sidecar and its imMD copy. */
export const FILE_TABLES = ['inodes', 'dirents', 'symlinks', 'xattrs', 'extents', 'snapshots'];

/**
 * Serializes the store; `meta` overrides meta keys in the image (the checkpoint's new generation).
 * `only` restricts the image to some tables (fsck compares FILE_TABLES of two stores).
 */
export function serializeStore(
  store: MetadataStore,
  meta: Record<string, string | number> = {},
  only?: readonly string[],
): Buffer {
  const tables = only ? TABLES.filter((t) => only.includes(t.table)) : TABLES;
  const w = new Writer();
  w.bytes(MAGIC);
  w.u16(IMAGE_VERSION);
  w.u16(tables.length);
  for (const spec of tables) {
    const cols = spec.columns.map(([c]) => c).join(', ');
    const stmt = store.db
      .prepare(`SELECT ${cols} FROM ${spec.table} ORDER BY ${spec.order}`)
      .raw(true)
      .safeIntegers(true);
    w.u8(spec.id);
    const countAt = w.reserve(8);
    const start = w.length;
    let rows = 0;
    for (const raw of stmt.iterate() as Iterable<Value[]>) {
      let row = raw;
      if (spec.table === 'meta') {
        const key = row[0] as string;
        if (key in meta) row = [key, toValue(meta[key])];
      }
      spec.columns.forEach(([, kind], i) => w.value(kind, row[i] ?? null));
      rows += 1;
    }
    w.patchU32(countAt, rows);
    w.patchU32(countAt + 4, w.length - start);
  }
  return w.finish();
}

/**
 * Builds a sidecar at `path` from an image, replacing whatever is there (built beside it, then
 * renamed, so a crash leaves the old sidecar or the new one, never half of one).
 */
export function rebuildStore(path: string, image: Buffer): MetadataStore {
  const tmp = `${path}.rebuild`;
  removeDb(tmp);
  const db = openDb(tmp, {}, true);
  try {
    migrate(db);
    const r = new Reader(image);
    if (!r.bytes(MAGIC.length).equals(MAGIC)) throw corrupt('bad magic');
    const version = r.u16();
    if (version > IMAGE_VERSION) {
      throw new ImapError('IMAP_E_VERSION_TOO_NEW', `metadata image version ${version} > ${IMAGE_VERSION}`);
    }
    const sections = r.u16();
    db.transaction(() => {
      for (let s = 0; s < sections; s += 1) {
        const id = r.u8();
        const rows = r.u32();
        const length = r.u32();
        const spec = TABLES.find((t) => t.id === id);
        if (!spec) {
          r.skip(length);
          continue;
        }
        // Inserting inodes already advanced the counters; the image's values replace them.
        if (spec.table === 'sqlite_sequence') db.prepare('DELETE FROM sqlite_sequence').run();
        const cols = spec.columns.map(([c]) => c);
        const insert = db.prepare(
          `INSERT OR REPLACE INTO ${spec.table}(${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
        );
        for (let i = 0; i < rows; i += 1) insert.run(...spec.columns.map(([, kind]) => r.value(kind)));
      }
    })();
    if (!r.done) throw corrupt('trailing bytes');
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
  } catch (err) {
    if (db.open) db.close();
    removeDb(tmp);
    if (err instanceof ImapError) throw err;
    throw new ImapError('IMAP_E_CORRUPT_METADATA', `metadata image: ${String(err)}`, { cause: err });
  }
  removeDb(path);
  renameSync(tmp, path);
  return MetadataStore.open(path);
}

export function removeDb(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
}

function toValue(v: string | number | undefined): Value {
  if (v === undefined) return null;
  return typeof v === 'number' ? BigInt(v) : v;
}

function corrupt(why: string): ImapError {
  return new ImapError('IMAP_E_CORRUPT_METADATA', `metadata image: ${why}`);
}

class Writer {
  private buf = Buffer.allocUnsafe(1 << 16);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v;
  }

  u16(v: number): void {
    this.ensure(2);
    this.length = this.buf.writeUInt16BE(v, this.length);
  }

  reserve(n: number): number {
    this.ensure(n);
    const at = this.length;
    this.length += n;
    return at;
  }

  patchU32(at: number, v: number): void {
    this.buf.writeUInt32BE(v, at);
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  varint(v: bigint): void {
    this.ensure(10);
    let x = v;
    while (x >= 0x80n) {
      this.buf[this.length++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.length++] = Number(x);
  }

  value(kind: Kind, v: Value): void {
    switch (kind) {
      case 'int':
        this.varint(zigzag(asBig(v)));
        return;
      case 'nint':
        this.varint(v === null ? 0n : zigzag(asBig(v)) + 1n);
        return;
      case 'blob':
      case 'text': {
        const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.isBuffer(v) ? v : Buffer.alloc(0);
        this.varint(BigInt(b.length));
        this.bytes(b);
        return;
      }
      case 'any':
        if (typeof v === 'string') {
          this.u8(1);
          this.value('text', v);
        } else {
          this.u8(0);
          this.value('int', v);
        }
    }
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.at === this.buf.length;
  }

  private need(n: number): void {
    if (this.at + n > this.buf.length) throw corrupt('truncated');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.at++] as number;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }

  skip(n: number): void {
    this.bytes(n);
  }

  varint(): bigint {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.u8();
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
      if (shift > 70n) throw corrupt('varint too long');
    }
  }

  value(kind: Kind): Value {
    switch (kind) {
      case 'int':
        return unzigzag(this.varint());
      case 'nint': {
        const v = this.varint();
        return v === 0n ? null : unzigzag(v - 1n);
      }
      case 'blob':
        return Buffer.from(this.bytes(Number(this.varint())));
      case 'text':
        return this.bytes(Number(this.varint())).toString('utf8');
      case 'any':
        return this.u8() === 1 ? this.value('text') : this.value('int');
    }
  }
}

function asBig(v: Value | number): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw corrupt(`expected an integer, got ${typeof v}`);
}

function zigzag(v: bigint): bigint {
  return v >= 0n ? v << 1n : (-v << 1n) - 1n;
}

function unzigzag(v: bigint): bigint {
  return (v & 1n) === 0n ? v >> 1n : -((v + 1n) >> 1n);
}
