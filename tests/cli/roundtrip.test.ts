import {
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { MetadataStore } from '../../src/fs/store';
import { ROOT_INO } from '../../src/fs/types';
import { imapfs, imapfsAsync, pngcheck } from '../helpers/cli';
import { pseudoRandom, tempDir } from '../helpers/fs-fixture';

// upng-js ships without types: the two calls we use, typed here.
interface UpngImage {
  width: number;
  height: number;
}
const UPNG = createRequire(__filename)('upng-js') as {
  decode(buf: ArrayBuffer): UpngImage;
  toRGBA8(img: UpngImage): ArrayBuffer[];
};

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('imapfs-roundtrip-'));
});
afterAll(() => cleanup());

/**
 * Independent Hilbert d2xy (docs/format.md): the classic curve from (0,0), transposed (x↔y) on maps
 * whose order log2(side) is odd. Written from the definition, not shared with src/map.
 */
function pixelOf(side: number, d: number): [number, number] {
  let x = 0;
  let y = 0;
  let t = d;
  for (let s = 1; s < side; s <<= 1) {
    const rx = 1 & (t >>> 1);
    const ry = 1 & (t ^ rx);
    if (ry === 0) {
      if (rx === 1) {
        x = s - 1 - x;
        y = s - 1 - y;
      }
      [x, y] = [y, x];
    }
    x += s * rx;
    y += s * ry;
    t >>>= 2;
  }
  return Math.log2(side) % 2 === 1 ? [y, x] : [x, y];
}

/** Builds the test tree: 1,000+ files from empty to 64 MiB (~300 MiB), dirs, symlinks, odd names. */
function buildTree(root: string): number {
  const sizes: number[] = [];
  for (let i = 0; i < 1000; i += 1) sizes.push(i % 7 === 0 ? 0 : (i * 7919) % 200_000);
  sizes.push(64 << 20, 48 << 20, 32 << 20, (32 << 20) | 123, 16 << 20, 8 << 20, 4096, 4095, 4097, 1);
  let total = 0;
  sizes.forEach((size, i) => {
    const sub = join(root, `d${i % 23}`, `e${i % 5}`);
    mkdirSync(sub, { recursive: true });
    const p = join(sub, `f${i}.bin`);
    writeFileSync(p, pseudoRandom(size, i + 1), { mode: i % 3 === 0 ? 0o600 : 0o644 });
    utimesSync(p, 1_600_000_000 + i, 1_500_000_000 + i + 0.25);
    total += size;
  });
  symlinkSync('d1/e1/f1.bin', join(root, 'link'));
  symlinkSync('/nowhere/at/all', join(root, 'dangling'));
  writeFileSync(join(root, Buffer.from([0x6e, 0xff, 0xfe]).toString('latin1')), 'latin1 name');
  mkdirSync(join(root, 'empty-dir'), { mode: 0o750 });
  return total + 'latin1 name'.length;
}

function compareTrees(a: string, b: string): number {
  let files = 0;
  for (const name of readdirSync(a)) {
    const pa = join(a, name);
    const pb = join(b, name);
    const sa = lstatSync(pa);
    const sb = lstatSync(pb);
    expect(sb.mode).toBe(sa.mode);
    if (sa.isDirectory()) {
      files += compareTrees(pa, pb);
      continue;
    }
    if (sa.isSymbolicLink()) {
      expect(readlinkSync(pb)).toBe(readlinkSync(pa));
      continue;
    }
    expect(sb.size).toBe(sa.size);
    expect(Math.abs(sb.mtimeMs - sa.mtimeMs)).toBeLessThan(0.01);
    if (!readFileSync(pa).equals(readFileSync(pb))) throw new Error(`content differs: ${pa}`);
    files += 1;
  }
  return files;
}

describe('put / get', () => {
  it('round-trips a tree of 1,000+ files up to 64 MiB, growing the map, byte for byte', () => {
    const src = join(dir, 'tree');
    mkdirSync(src);
    const total = buildTree(src);
    const map = join(dir, 'big.png');
    expect(imapfs(['mkfs', map, '--size', '1M']).status).toBe(0);
    const put = imapfs(['put', map, src, '/', '--json']);
    expect(put.status).toBe(0);
    expect(put.json).toMatchObject({ ok: true, bytes: total });
    expect(put.json?.files as number).toBeGreaterThanOrEqual(1000);
    expect(put.json?.side as number).toBeGreaterThan(512); // it grew
    expect(pngcheck(map).ok).toBe(true);
    const fsck = imapfs(['fsck', map, '--json']);
    expect(fsck.json).toMatchObject({ clean: true, problems: [] });
    const out = join(dir, 'out');
    mkdirSync(out);
    expect(imapfs(['get', map, '/tree', out]).status).toBe(0);
    expect(compareTrees(src, join(out, 'tree'))).toBeGreaterThanOrEqual(1000);
  });

  it('upng-js decodes the map and shows known file bytes at known pixels', () => {
    const map = join(dir, 'pixels.png');
    const data = pseudoRandom(3 * 4096 + 777, 42);
    const src = join(dir, 'pixels.bin');
    writeFileSync(src, data);
    imapfs(['mkfs', map, '--size', '1M']);
    imapfs(['put', map, join(dir, 'pixels.bin'), '/a']); // a first file, so ours is not at cluster 0
    expect(imapfs(['put', map, src, '/pixels']).status).toBe(0);
    const store = MetadataStore.open(`${map}.imapdb`, { readOnly: true });
    const ino = store.lookup(ROOT_INO, Buffer.from('pixels'))?.ino ?? -1;
    const extents = store.liveExtents(ino);
    store.close();
    expect(extents.length).toBeGreaterThan(0);
    const png = readFileSync(map);
    const img = UPNG.decode(png.buffer.slice(png.byteOffset, png.byteOffset + png.length) as ArrayBuffer);
    const rgba = new Uint8Array(UPNG.toRGBA8(img)[0] as ArrayBuffer);
    let checked = 0;
    for (const e of extents) {
      for (let j = 0; j < e.length * 4096; j += 97) {
        const fileByte = e.fileCluster * 4096 + j;
        if (fileByte >= data.length) break;
        const b = e.firstCluster * 4096 + j; // byte of the cluster space
        const [x, y] = pixelOf(img.width, Math.floor(b / 4));
        expect(rgba[(y * img.width + x) * 4 + (b & 3)]).toBe(data[fileByte]);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('a put killed mid-way (SIGKILL) leaves a map that the next open repairs', async () => {
    const map = join(dir, 'crash.png');
    const src = join(dir, 'crash.bin');
    writeFileSync(src, pseudoRandom(192 << 20, 5));
    expect(imapfs(['put', map, src, '/x']).status).not.toBe(0); // no map yet: clean error
    imapfs(['mkfs', map, '--size', '64M']);
    expect(imapfs(['put', map, join(dir, 'pixels.bin'), '/before']).status).toBe(0);
    const child = imapfsAsync(['put', map, src, '/crash.bin']);
    const started = Date.now();
    // Wait until the put is writing data (the sidecar's WAL has grown), then kill it.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        let wal = 0;
        try {
          wal = statSync(`${map}.imapdb-wal`).size;
        } catch {
          wal = 0;
        }
        if (wal > 64 * 1024 || Date.now() - started > 60_000) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const info = imapfs(['info', map, '--json']);
    expect(info.status).toBe(0);
    expect(info.json?.state).toBe('recovered');
    expect(pngcheck(map).ok).toBe(true);
    const fsck = imapfs(['fsck', map, '--json']);
    expect(fsck.json).toMatchObject({ clean: true });
    // what was committed before the kill reads back as a prefix of the source
    const out = join(dir, 'crash.out');
    expect(imapfs(['get', map, '/crash.bin', out]).status).toBe(0);
    const got = readFileSync(out);
    expect(readFileSync(src).subarray(0, got.length).equals(got)).toBe(true);
    const before = join(dir, 'before.out');
    expect(imapfs(['get', map, '/before', before]).status).toBe(0);
    expect(readFileSync(before).equals(readFileSync(join(dir, 'pixels.bin')))).toBe(true);
  });
});
