import {
  closeSync,
  copyFileSync,
  openSync,
  readFileSync,
  readSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { CLUSTER_SIZE, MapContainer } from '../../src/map';
import { MapLayout, SUPERBLOCK_CHUNK_OFFSET } from '../../src/map/layout';
import { ImapError, type ErrorCode } from '../../src/protocol/errors';
import { clusterPattern, decodePng, pngcheck, withTempDir } from './helpers';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = withTempDir();
});
afterEach(() => tmp.cleanup());

const SIDE = 256; // 9 stored blocks
const layout = new MapLayout(SIDE);

function makeMap(name = 'm.png'): string {
  const path = join(tmp.dir, name);
  const m = MapContainer.create(path, { side: SIDE });
  for (const c of [0, 5, 17, 40, 63]) m.writeClusters(c, clusterPattern(c));
  m.checkpoint({ generation: 2n, payload: Buffer.from('metadata payload '.repeat(20)) });
  m.close();
  return path;
}

function flip(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x5a;
  writeSync(fd, b, 0, 1, offset);
  closeSync(fd);
}

function codes(path: string): ErrorCode[] {
  return MapContainer.verifyFile(path).problems.map((p) => p.code);
}

function openError(path: string): ErrorCode | null {
  try {
    MapContainer.open(path).close();
    return null;
  } catch (err) {
    if (!(err instanceof ImapError)) throw new Error(`open threw a non-ImapError: ${String(err)}`);
    return err.code;
  }
}

describe('crash recovery', () => {
  it('a map closed without checkpoint needs recovery, and repair makes it valid with data intact', () => {
    const path = makeMap();
    const m = MapContainer.open(path);
    expect(m.needsRecovery).toBe(false);
    for (const c of [1, 2, 3, 30, 62]) m.writeClusters(c, clusterPattern(c, 9));
    // A copy taken mid-state, like a crash would leave it.
    copyFileSync(path, join(tmp.dir, 'crash.png'));
    m.close();

    for (const p of [path, join(tmp.dir, 'crash.png')]) {
      expect(pngcheck(p).ok).toBe(false);
      const r = MapContainer.open(p);
      expect(r.needsRecovery).toBe(true);
      expect(r.verify().ok).toBe(false);
      const report = r.repairChecksums();
      expect(report.chunksFixed).toBeGreaterThan(0);
      expect(report.adlerFixed).toBe(true);
      expect(r.needsRecovery).toBe(false);
      expect(r.verify()).toEqual({ ok: true, problems: [] });
      const buf = Buffer.alloc(CLUSTER_SIZE);
      for (const c of [1, 2, 3, 30, 62]) {
        r.readClusters(c, 1, buf);
        expect(buf.equals(clusterPattern(c, 9))).toBe(true);
      }
      r.readClusters(40, 1, buf);
      expect(buf.equals(clusterPattern(40))).toBe(true);
      expect(r.readMetadataChunk()?.generation).toBe(2n);
      r.close();
      expect(pngcheck(p).ok).toBe(true);
      decodePng(readFileSync(p));
      expect(MapContainer.open(p, { readOnly: true }).needsRecovery).toBe(false);
    }
  });

  it('checkpoint on a map opened dirty does the full repair itself', () => {
    const path = makeMap();
    const m = MapContainer.open(path);
    m.writeClusters(7, clusterPattern(7, 3));
    m.close();
    const r = MapContainer.open(path);
    expect(r.needsRecovery).toBe(true);
    r.writeClusters(8, clusterPattern(8, 3));
    r.checkpoint();
    r.close();
    expect(pngcheck(path).ok).toBe(true);
    expect(MapContainer.verifyFile(path).ok).toBe(true);
  });
});

describe('corruption is reported with the right code', () => {
  const dataChunk = layout.blockChunkOffset(3);
  const cases: [string, (path: string) => number, ErrorCode][] = [
    ['a data chunk payload byte', () => dataChunk + 8 + 5 + 1000, 'IMAP_E_CORRUPT_CHUNK'],
    ['a data chunk length field', () => dataChunk + 2, 'IMAP_E_CORRUPT_HEADER'],
    ['a data chunk type field', () => dataChunk + 5, 'IMAP_E_CORRUPT_HEADER'],
    ['a stored block header', () => dataChunk + 8 + 1, 'IMAP_E_CORRUPT_ZLIB'],
    ['the Adler-32 chunk', () => layout.adlerChunkOffset + 9, 'IMAP_E_CORRUPT_ZLIB'],
    ['the imSB chunk', () => SUPERBLOCK_CHUNK_OFFSET + 8 + 20, 'IMAP_E_CORRUPT_SUPERBLOCK'],
    ['the imMD chunk', () => layout.tailOffset + 8 + 20, 'IMAP_E_CORRUPT_METADATA'],
  ];
  it.each(cases)('%s', (_name, where, code) => {
    const path = makeMap();
    flip(path, where(path));
    expect(codes(path)).toContain(code);
  });

  it('repair fixes a flipped payload byte checksum-wise and a damaged chunk header', () => {
    const path = makeMap();
    flip(path, dataChunk + 2);
    flip(path, layout.blockChunkOffset(5) + 8 + 5 + 7);
    const m = MapContainer.open(path);
    const r = m.repairChecksums();
    expect(r.chunksFixed).toBe(2);
    m.close();
    expect(pngcheck(path).ok).toBe(true);
  });

  it('a torn metadata chunk is dropped by repair', () => {
    const path = makeMap();
    flip(path, layout.tailOffset + 8 + 30);
    const m = MapContainer.open(path);
    expect(() => m.readMetadataChunk()).toThrow(expect.objectContaining({ code: 'IMAP_E_CORRUPT_METADATA' }));
    expect(m.repairChecksums().metadataDropped).toBe(true);
    expect(m.readMetadataChunk()).toBeNull();
    m.close();
    expect(pngcheck(path).ok).toBe(true);
  });

  it('truncation at any length gives TRUNCATED (or CORRUPT_HEADER), never a crash', () => {
    const path = makeMap();
    const full = readFileSync(path);
    const lengths = [
      1,
      7,
      8,
      20,
      33,
      60,
      109,
      115,
      130,
      5000,
      40000,
      layout.adlerChunkOffset + 3,
      layout.tailOffset + 4,
      full.length - 1,
    ];
    for (const len of lengths) {
      const p = join(tmp.dir, `t${len}.png`);
      writeFileSync(p, full.subarray(0, len));
      const openCode = openError(p);
      expect(['IMAP_E_TRUNCATED', 'IMAP_E_CORRUPT_HEADER']).toContain(openCode);
      const report = MapContainer.verifyFile(p);
      expect(report.ok).toBe(false);
      expect(['IMAP_E_TRUNCATED', 'IMAP_E_CORRUPT_HEADER']).toContain(report.problems[0].code);
    }
    // Truncated after open: verify notices.
    const m = MapContainer.open(path, { readOnly: true });
    truncateSync(path, 50000);
    expect(m.verify().problems.map((p) => p.code)).toContain('IMAP_E_TRUNCATED');
    m.close();
  });

  it('non-PNG, other PNG, missing file and newer version', () => {
    const junk = join(tmp.dir, 'junk.png');
    writeFileSync(junk, 'hello, this is not a png at all, not even close to one');
    expect(openError(junk)).toBe('IMAP_E_NOT_A_MAP');
    writeFileSync(junk, '');
    expect(openError(junk)).toBe('IMAP_E_NOT_A_MAP');
    expect(codes(junk)).toEqual(['IMAP_E_NOT_A_MAP']);

    // A plain PNG without imSB: drop the superblock chunk from a real map.
    const path = makeMap();
    const full = readFileSync(path);
    const plain = Buffer.concat([
      full.subarray(0, SUPERBLOCK_CHUNK_OFFSET),
      full.subarray(SUPERBLOCK_CHUNK_OFFSET + 76),
    ]);
    writeFileSync(junk, plain);
    expect(openError(junk)).toBe('IMAP_E_NOT_A_MAP');

    expect(openError(join(tmp.dir, 'nope.png'))).toBe('IMAP_E_MAP_MISSING');
    expect(codes(join(tmp.dir, 'nope.png'))).toEqual(['IMAP_E_MAP_MISSING']);

    // Version + 1 with a correct chunk CRC, as a newer imapfs would write it.
    const v = Buffer.from(full);
    const sbData = SUPERBLOCK_CHUNK_OFFSET + 8;
    v.writeUInt16BE(v.readUInt16BE(sbData + 8) + 1, sbData + 8);
    v.writeUInt32BE(crc32(v.subarray(SUPERBLOCK_CHUNK_OFFSET + 4, sbData + 64)), sbData + 64);
    writeFileSync(junk, v);
    expect(openError(junk)).toBe('IMAP_E_VERSION_TOO_NEW');
  });
});
