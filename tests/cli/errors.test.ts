import { closeSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { errorCode, imapfs, pngcheck } from '../helpers/cli';
import { tempDir } from '../helpers/fs-fixture';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('imapfs-cli-'));
});
afterAll(() => cleanup());

describe('imapfs mkfs / info', () => {
  it('makes a valid PNG and describes it', () => {
    const map = join(dir, 'ok.png');
    const mk = imapfs(['mkfs', map, '--size', '1M', '--json']);
    expect(mk.status).toBe(0);
    expect(mk.json).toMatchObject({ ok: true, side: 512, clusters: 256 });
    expect(pngcheck(map).ok).toBe(true);
    const info = imapfs(['info', map, '--json']);
    expect(info.status).toBe(0);
    expect(info.json).toMatchObject({
      ok: true,
      formatVersion: 1,
      files: 1,
      state: 'clean',
      usedBytes: 0,
      freeBytes: 1 << 20,
    });
    const human = imapfs(['info', map]);
    expect(human.stdout).toMatch(/geometry\s+512×512 pixels, 256 clusters/);
    const again = imapfs(['mkfs', map, '--json']);
    expect(again.status).toBe(1);
    expect(errorCode(again)).toBe('IMAP_E_EXISTS');
    expect(imapfs(['mkfs', map, '--size', '2M', '--force']).status).toBe(0);
    expect(imapfs(['mkfs', map, '--size', 'lots']).stderr).toMatch(/IMAP_E_USAGE/);
  });

  const cases: [string, (map: string) => void, string, number][] = [
    ['missing map', () => undefined, 'IMAP_E_MAP_MISSING', 1],
    ['not a map (text)', (m) => writeFileSync(m, 'hello, I am not a PNG\n'), 'IMAP_E_NOT_A_MAP', 2],
    [
      'not a map (a plain PNG)',
      (m) =>
        writeFileSync(
          m,
          readFileSync(join(__dirname, '..', 'helpers', 'plain.png.b64'), 'utf8').trim(),
          'base64',
        ),
      'IMAP_E_NOT_A_MAP',
      2,
    ],
  ];
  it.each(cases)('%s → one clear line, JSON, exit status', (_label, make, code, exit) => {
    const map = join(dir, `${code}.png`);
    make(map);
    const r = imapfs(['info', map, '--json']);
    expect(r.status).toBe(exit);
    expect(errorCode(r)).toBe(code);
    const human = imapfs(['info', map]);
    expect(human.status).toBe(exit);
    expect(human.stderr).toMatch(new RegExp(`^imapfs: ${code}: .+\\n  hint: .+\\n$`));
    expect(human.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  it('truncated map: reported by info and fsck, not crashed on', () => {
    const map = join(dir, 'trunc.png');
    imapfs(['mkfs', map, '--size', '1M']);
    truncateSync(map, 300_000);
    const r = imapfs(['info', map, '--json']);
    expect(errorCode(r)).toBe('IMAP_E_TRUNCATED');
    expect(r.status).toBe(3);
    const f = imapfs(['fsck', map, '--json']);
    expect(f.status).toBe(3);
    expect((f.json?.problems as { code: string }[]).map((p) => p.code)).toContain('IMAP_E_TRUNCATED');
  });

  it('newer format version → IMAP_E_VERSION_TOO_NEW', () => {
    const map = join(dir, 'new.png');
    imapfs(['mkfs', map, '--size', '1M']);
    const buf = readFileSync(map);
    const at = buf.indexOf('imSB');
    buf.writeUInt16BE(99, at + 4 + 8); // superblock: magic(8), version(u16)
    const len = buf.readUInt32BE(at - 4);
    buf.writeUInt32BE(crc32(buf.subarray(at, at + 4 + len)), at + 4 + len);
    writeFileSync(map, buf);
    const r = imapfs(['info', map, '--json']);
    expect(errorCode(r)).toBe('IMAP_E_VERSION_TOO_NEW');
    expect(r.status).toBe(2);
  });

  it('a live lock → IMAP_E_MAP_LOCKED; a stale one is taken over', () => {
    const map = join(dir, 'locked.png');
    imapfs(['mkfs', map, '--size', '1M']);
    writeFileSync(`${map}.lock`, `${process.pid}\n`);
    const r = imapfs(['info', map, '--json']);
    expect(errorCode(r)).toBe('IMAP_E_MAP_LOCKED');
    writeFileSync(`${map}.lock`, '999999\n');
    expect(imapfs(['info', map]).status).toBe(0);
  });

  it('full disk while writing → IMAP_E_DISK_FULL', () => {
    const map = join(dir, 'full.png');
    imapfs(['mkfs', map, '--size', '1M']);
    const src = join(dir, 'payload');
    const fd = openSync(src, 'w');
    writeSync(fd, Buffer.alloc(200_000, 7));
    closeSync(fd);
    expect(imapfs(['put', map, src, '/payload']).status).toBe(0);
    const r = imapfs(['get', map, '/payload', '/dev/full', '--json']);
    expect(errorCode(r)).toBe('IMAP_E_DISK_FULL');
    expect(r.status).toBe(1);
  });
});
