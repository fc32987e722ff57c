import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imapfs, pngcheck } from '../helpers/cli';
import { tempDir } from '../helpers/fs-fixture';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('imapfs-corrupt-'));
});
afterAll(() => cleanup());

/** A map holding /pattern: 4 clusters of 0xAB, so whole 32-pixel tile rows of 0xAB appear in the PNG. */
function mapWithPattern(label: string): string {
  const map = join(dir, `${label}.png`);
  const src = join(dir, `${label}.src`);
  writeFileSync(src, Buffer.alloc(4 * 4096, 0xab));
  expect(imapfs(['mkfs', map, '--size', '1M']).status).toBe(0);
  expect(imapfs(['put', map, src, '/pattern']).status).toBe(0);
  expect(imapfs(['fsck', map]).status).toBe(0);
  return map;
}

function flip(map: string, at: number): void {
  const buf = readFileSync(map);
  buf[at] = (buf[at] as number) ^ 0x5a;
  writeFileSync(map, buf);
}

function problems(r: ReturnType<typeof imapfs>): string[] {
  return ((r.json?.problems as { code: string }[] | undefined) ?? []).map((p) => p.code);
}

describe('fsck finds corruption', () => {
  it('a byte of a cluster → CORRUPT_CHUNK (PNG CRC) and CORRUPT_CLUSTER (data CRC)', () => {
    const map = mapWithPattern('cluster');
    const at = readFileSync(map).indexOf(Buffer.alloc(128, 0xab));
    expect(at).toBeGreaterThan(0);
    flip(map, at + 17);
    const r = imapfs(['fsck', map, '--json']);
    expect(r.status).toBe(3);
    expect(problems(r)).toEqual(expect.arrayContaining(['IMAP_E_CORRUPT_CHUNK', 'IMAP_E_CORRUPT_CLUSTER']));
    expect(JSON.stringify(r.json)).toContain('/pattern');
    // get of the damaged file fails cleanly with the cluster code
    const g = imapfs(['get', map, '/pattern', join(dir, 'out'), '--json']);
    expect((g.json?.error as { code: string }).code).toBe('IMAP_E_CORRUPT_CLUSTER');
    // --repair makes the PNG valid again but cannot invent the lost data
    const rep = imapfs(['fsck', map, '--repair', '--json']);
    expect(problems(rep)).toEqual(['IMAP_E_CORRUPT_CLUSTER']);
    expect(pngcheck(map).ok).toBe(true);
  });

  it('a chunk header → reported with a container code, not a crash', () => {
    const map = mapWithPattern('header');
    const buf = readFileSync(map);
    const second = buf.indexOf('IDAT', buf.indexOf('IDAT') + 4);
    flip(map, second + 1);
    const r = imapfs(['fsck', map, '--json']);
    expect(r.status).toBe(3);
    expect(problems(r).some((c) => ['IMAP_E_CORRUPT_HEADER', 'IMAP_E_CORRUPT_CHUNK'].includes(c))).toBe(true);
    const info = imapfs(['info', map, '--json']);
    expect(info.status).not.toBe(0);
    expect(info.stderr).not.toMatch(/\.ts:\d+/);
  });

  it('the metadata chunk → CORRUPT_METADATA; --repair rewrites it from the sidecar', () => {
    const map = mapWithPattern('immd');
    const at = readFileSync(map).lastIndexOf('imMD');
    flip(map, at + 4 + 20);
    const r = imapfs(['fsck', map, '--json']);
    expect(r.status).toBe(3);
    expect(problems(r)).toContain('IMAP_E_CORRUPT_METADATA');
    const rep = imapfs(['fsck', map, '--repair', '--json']);
    expect(rep.status).toBe(0);
    expect(imapfs(['fsck', map]).status).toBe(0);
    expect(pngcheck(map).ok).toBe(true);
  });

  it('a lost sidecar is rebuilt from the metadata chunk', () => {
    const map = mapWithPattern('rebuild');
    const sidecar = `${map}.imapdb`;
    for (const s of ['', '-wal', '-shm']) rmSync(`${sidecar}${s}`, { force: true });
    const info = imapfs(['info', map, '--json']);
    expect(info.json).toMatchObject({ sidecar: 'rebuilt', files: 2 });
    const out = join(dir, 'rebuilt.out');
    expect(imapfs(['get', map, '/pattern', out]).status).toBe(0);
    expect(readFileSync(out).equals(Buffer.alloc(4 * 4096, 0xab))).toBe(true);
  });
});
