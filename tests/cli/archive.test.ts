/**
 * Issue 7: `imapfs import` / `imapfs export`, tar archives in and out of a map, checked against
 * independent tools: GNU tar makes the archive that is imported, GNU tar extracts the archive that
 * is exported, pngcheck and fsck judge the map. The tree holds what tree-copy preserves: nested
 * directories, a 20 MiB file, an empty file, a symlink, a hard link pair, a name that is not UTF-8,
 * odd modes, numeric owners (as root) and mtimes with nanoseconds.
 */
import { spawnSync } from 'node:child_process';
import {
  type BigIntStats,
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { IMAPFS_ARGV, errorCode, imapfs, pngcheck } from '../helpers/cli';
import { pseudoRandom, tempDir } from '../helpers/fs-fixture';

const AS_ROOT = process.getuid?.() === 0;
const BIG = 20 << 20;
/** "f\xff.bin": not UTF-8, so only a byte-exact path survives. */
const NON_UTF8 = Buffer.from([0x66, 0xff, 0x2e, 0x62, 0x69, 0x6e]);

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('imapfs-archive-'));
});
afterAll(() => cleanup());

const path = (...parts: Array<string | Buffer>): Buffer =>
  Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [Buffer.from('/'), Buffer.from(p)])));

/** A byte string as a bash $'…' word, so that any name reaches a shell command intact. */
const shellWord = (bytes: Buffer): string =>
  `$'${[...bytes].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}'`;

function sh(script: string, input?: Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -o pipefail\n${script}`], { input, maxBuffer: 256 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

function mustSh(script: string): void {
  const r = sh(script);
  if (r.status !== 0) throw new Error(`${script}\n→ ${r.status}: ${r.stderr}`);
}

/** Sets mtimes to exact nanoseconds (touch -h also reaches symlinks); children before parents. */
function setMtimes(root: Buffer, times: Array<[Buffer, string]>): void {
  mustSh(times.map(([p, t]) => `touch -h -m -d @${t} ${shellWord(path(root, p))}`).join('\n'));
}

/** The test tree; returns the bytes of its regular files (each hard-linked inode once). */
function buildTree(root: Buffer): number {
  mkdirSync(path(root, 'a/b/c'), { recursive: true });
  mkdirSync(path(root, 'emptydir'));
  chmodSync(path(root, 'emptydir'), 0o750);
  writeFileSync(path(root, 'a/b/c/deep.txt'), 'deep down\n');
  writeFileSync(path(root, 'a/big.bin'), pseudoRandom(BIG, 7));
  chmodSync(path(root, 'a/big.bin'), 0o640);
  writeFileSync(path(root, 'empty'), '');
  symlinkSync('a/b/c/deep.txt', path(root, 'link'));
  writeFileSync(path(root, 'hard1'), 'one inode, two names\n');
  linkSync(path(root, 'hard1'), path(root, 'a/hard2'));
  writeFileSync(path(root, NON_UTF8), 'a name that is not UTF-8\n');
  writeFileSync(path(root, 'suid'), '#!/bin/sh\n');
  chmodSync(path(root, 'suid'), AS_ROOT ? 0o4755 : 0o755);
  writeFileSync(path(root, 'owned'), 'numeric owner\n');
  if (AS_ROOT) chownSync(path(root, 'owned'), 1234, 5678);
  setMtimes(root, [
    [Buffer.from('a/b/c/deep.txt'), '1500000001.123456789'],
    [Buffer.from('a/big.bin'), '1500000002.000000001'],
    [Buffer.from('empty'), '1500000003.999999999'],
    [Buffer.from('link'), '1500000004.5'],
    [Buffer.from('hard1'), '1500000005.250000000'],
    [NON_UTF8, '1500000006.987654321'],
    [Buffer.from('suid'), '1500000007.1'],
    [Buffer.from('owned'), '1500000008.000000002'],
    [Buffer.from('emptydir'), '1500000009.314159265'],
    [Buffer.from('a/b/c'), '1500000010.271828182'],
    [Buffer.from('a/b'), '1500000011.141421356'],
    [Buffer.from('a'), '1500000012.173205080'],
    [Buffer.from('.'), '1500000013.223606797'],
  ]);
  return 10 + BIG + 0 + 21 + 25 + 10 + 14;
}

/**
 * `copy` against `orig`, recursively, names as bytes: same names, type and mode, size, mtime (to the
 * nanosecond unless `slackNs` allows less), owners (as root), file bytes, symlink targets. Returns
 * the entries compared.
 */
function compareTrees(orig: Buffer, copy: Buffer, slackNs = 0n): number {
  const sa = lstatSync(orig, { bigint: true });
  const sb = lstatSync(copy, { bigint: true });
  const where = copy.toString('latin1');
  expect([where, sb.mode.toString(8)]).toEqual([where, sa.mode.toString(8)]);
  const drift = sb.mtimeNs - sa.mtimeNs;
  if (drift > slackNs || -drift > slackNs) expect([where, sb.mtimeNs]).toEqual([where, sa.mtimeNs]);
  if (AS_ROOT) expect([where, sb.uid, sb.gid]).toEqual([where, sa.uid, sa.gid]);
  if (sa.isSymbolicLink()) {
    expect(
      readlinkSync(copy, { encoding: 'buffer' }).equals(readlinkSync(orig, { encoding: 'buffer' })),
    ).toBe(true);
    return 1;
  }
  if (sa.isFile()) {
    expect([where, sb.size]).toEqual([where, sa.size]);
    if (!readFileSync(copy).equals(readFileSync(orig))) throw new Error(`content differs: ${where}`);
    return 1;
  }
  const names = (p: Buffer): Buffer[] => readdirSync(p, { encoding: 'buffer' }).sort(Buffer.compare);
  const na = names(orig);
  const nb = names(copy);
  expect(nb.map((n) => n.toString('hex'))).toEqual(na.map((n) => n.toString('hex')));
  let count = 1;
  for (const n of na) count += compareTrees(path(orig, n), path(copy, n), slackNs);
  return count;
}

function expectHardLinked(root: Buffer): void {
  const one: BigIntStats = lstatSync(path(root, 'hard1'), { bigint: true });
  const two: BigIntStats = lstatSync(path(root, 'a/hard2'), { bigint: true });
  expect(two.ino).toBe(one.ino);
  expect(one.nlink).toBe(2n);
}

interface ProgressLine {
  progress: string;
  doneBytes: number;
  totalBytes: number | null;
}

function progressLines(stderr: string): ProgressLine[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{"progress"'))
    .map((l) => JSON.parse(l) as ProgressLine);
}

const cli = IMAPFS_ARGV.map((a) => `'${a}'`).join(' ');

describe('import / export', () => {
  let src: Buffer;
  let fileBytes: number;
  let gnuTar: string;
  let map: string;

  beforeAll(() => {
    src = Buffer.from(join(dir, 'src'));
    mkdirSync(src);
    fileBytes = buildTree(src);
    gnuTar = join(dir, 'gnu.tar');
    mustSh(`tar --format=pax -cf '${gnuTar}' -C '${src.toString()}' .`);
    map = join(dir, 'm.png');
    expect(imapfs(['mkfs', map, '--size', '1M']).status).toBe(0);
  });

  it('imports a GNU tar pax archive: counts, growth, fsck clean, pngcheck passes', () => {
    const r = imapfs(['import', map, gnuTar, '/tree', '--json']);
    expect(r.status).toBe(0);
    expect(r.json).toMatchObject({
      ok: true,
      files: 7,
      directories: 5,
      symlinks: 1,
      hardlinks: 1,
      bytes: fileBytes,
      archiveBytes: statSync(gnuTar).size,
    });
    expect(r.json?.side as number).toBeGreaterThan(512); // it grew
    // pngcheck first: fsck's open would fold in anything the import left unfinished.
    expect(pngcheck(map).ok).toBe(true);
    expect(imapfs(['fsck', map, '--json']).json).toMatchObject({ clean: true, problems: [] });
  });

  it('export, extracted by GNU tar, reproduces the tree: bytes, modes, owners, ns mtimes, links, names', () => {
    const out = join(dir, 'export.tar');
    const r = imapfs(['export', map, '/tree', '-o', out, '--json']);
    expect(r.status).toBe(0);
    expect(r.json).toMatchObject({ ok: true, files: 7, hardlinks: 1, symlinks: 1, bytes: fileBytes });
    const x = join(dir, 'x-export');
    mkdirSync(x);
    const tar = sh(`tar -xpf '${out}' -C '${x}'`);
    expect(tar.stderr).toBe(''); // no warning either (unknown pax keywords, bad headers…)
    expect(tar.status).toBe(0);
    expect(compareTrees(src, Buffer.from(x))).toBe(14);
    expectHardLinked(Buffer.from(x));
    expect(readFileSync(path(x, NON_UTF8), 'utf8')).toBe('a name that is not UTF-8\n');
  });

  it('import then get reproduces the tree', () => {
    const out = join(dir, 'x-get');
    mkdirSync(out);
    expect(imapfs(['get', map, '/tree', out]).status).toBe(0);
    // get sets host times through Node's utimes, which takes seconds as a double: about a microsecond.
    expect(compareTrees(src, path(out, 'tree'), 2000n)).toBe(14);
    expectHardLinked(path(out, 'tree'));
  });

  it('pipes: export to stdout into import from stdin', () => {
    const map2 = join(dir, 'm2.png');
    expect(imapfs(['mkfs', map2, '--size', '1M']).status).toBe(0);
    const r = sh(`${cli} export '${map}' /tree - | ${cli} import '${map2}' - /`);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^exported 7 files/); // export's result: stdout is the archive
    expect(r.stdout.toString()).toMatch(/^imported 7 files/);
    const out = join(dir, 'x-pipe');
    mkdirSync(out);
    expect(imapfs(['get', map2, '/', out]).status).toBe(0);
    expect(compareTrees(src, Buffer.from(out), 2000n)).toBe(14);
    expectHardLinked(Buffer.from(out));
    expect(imapfs(['fsck', map2, '--json']).json).toMatchObject({ clean: true });
  });

  it('--json: progress lines on stderr, one result document (on stderr when stdout is the archive)', () => {
    const map3 = join(dir, 'm3.png');
    expect(imapfs(['mkfs', map3, '--size', '1M']).status).toBe(0);
    const size = statSync(gnuTar).size;
    const imp = imapfs(['import', map3, gnuTar, '--json']);
    expect(imp.status).toBe(0);
    expect(imp.json).toMatchObject({ ok: true });
    const il = progressLines(imp.stderr);
    expect(il.length).toBeGreaterThanOrEqual(2);
    expect(il.every((l) => l.progress === 'import' && l.totalBytes === size)).toBe(true);
    expect(il[0]!.doneBytes).toBe(0);
    expect(il[il.length - 1]!.doneBytes).toBe(size);

    const exp = imapfs(['export', map3, '/', '-o', join(dir, 'p.tar'), '--json']);
    expect(exp.status).toBe(0);
    expect(exp.json).toMatchObject({ ok: true, bytes: fileBytes });
    const el = progressLines(exp.stderr);
    expect(el.length).toBeGreaterThanOrEqual(2);
    expect(el.every((l) => l.progress === 'export' && l.totalBytes === fileBytes)).toBe(true);
    expect(el[el.length - 1]!.doneBytes).toBe(fileBytes);

    // The archive on stdout stays pure: GNU tar lists it; the result is stderr's last line.
    const piped = sh(`${cli} export '${map3}' / -o - --json 2>'${join(dir, 'err.txt')}' | tar -tf - | wc -l`);
    expect(piped.status).toBe(0);
    expect(Number(piped.stdout.toString().trim())).toBe(14);
    const err = readFileSync(join(dir, 'err.txt'), 'utf8').trim().split('\n');
    expect(JSON.parse(err[err.length - 1]!)).toMatchObject({ ok: true, files: 7, bytes: fileBytes });
    expect(progressLines(err.join('\n')).length).toBeGreaterThanOrEqual(2);
  });
});

describe('damaged archives', () => {
  let flat: string;
  let archive: Buffer;
  const small = 'before the cut\n';

  beforeAll(() => {
    flat = join(dir, 'flat');
    mkdirSync(flat);
    writeFileSync(join(flat, 'a.txt'), small);
    writeFileSync(join(flat, 'b.bin'), pseudoRandom(BIG, 11));
    writeFileSync(join(flat, 'c.txt'), 'after the cut\n');
    const t = join(dir, 'flat.tar');
    // Members in this order, so that a cut in the middle lands in b.bin's data.
    mustSh(`tar --format=pax -cf '${t}' -C '${flat}' ./a.txt ./b.bin ./c.txt`);
    archive = readFileSync(t);
  });

  function importInto(name: string, bytes: Buffer): { map: string; r: ReturnType<typeof imapfs> } {
    const map = join(dir, `${name}.png`);
    const file = join(dir, `${name}.tar`);
    writeFileSync(file, bytes);
    expect(imapfs(['mkfs', map, '--size', '1M']).status).toBe(0);
    return { map, r: imapfs(['import', map, file, '/t', '--json']) };
  }

  /** What a `get` of /t finds: the members before the damage, whole; nothing of the rest. */
  function expectOnlyA(map: string, out: string): void {
    // pngcheck first: fsck's open would fold in anything the failed import left unfinished.
    expect(pngcheck(map).ok).toBe(true);
    expect(imapfs(['fsck', map, '--json']).json).toMatchObject({ clean: true, problems: [] });
    mkdirSync(out);
    expect(imapfs(['get', map, '/t', out]).status).toBe(0);
    expect(readdirSync(join(out, 't')).sort()).toEqual(['a.txt']);
    expect(readFileSync(join(out, 't', 'a.txt'), 'utf8')).toBe(small);
  }

  it('truncated inside a big member: IMAP_E_ARCHIVE_TRUNCATED, the cut member removed, fsck clean', () => {
    const cut = 10 << 20;
    const { map, r } = importInto('cut', archive.subarray(0, cut));
    expect(r.status).toBe(3);
    expect(errorCode(r)).toBe('IMAP_E_ARCHIVE_TRUNCATED');
    const message = (r.json?.error as { message: string }).message;
    expect(message).toContain('b.bin');
    expect(message).toContain(`ends at byte ${cut}`);
    expectOnlyA(map, join(dir, 'x-cut'));
  });

  it('a damaged header: IMAP_E_ARCHIVE_CORRUPT naming its offset, members before it kept', () => {
    const bad = Buffer.from(archive);
    // The first header that names b.bin (its pax header): one byte of its name flipped.
    const at = Math.floor(bad.indexOf('b.bin') / 512) * 512;
    bad[at + 3] = (bad[at + 3] ?? 0) ^ 0x20;
    const { map, r } = importInto('corrupt', bad);
    expect(r.status).toBe(3);
    expect(errorCode(r)).toBe('IMAP_E_ARCHIVE_CORRUPT');
    expect((r.json?.error as { message: string }).message).toContain(`byte ${at}`);
    expectOnlyA(map, join(dir, 'x-corrupt'));
  });

  it('not an archive at all, or empty: a clear error and an untouched map', () => {
    const text = importInto('text', Buffer.from('hello, I am not a tar file\n'.repeat(100)));
    expect(errorCode(text.r)).toBe('IMAP_E_ARCHIVE_CORRUPT');
    const empty = importInto('empty', Buffer.alloc(0));
    expect(errorCode(empty.r)).toBe('IMAP_E_ARCHIVE_TRUNCATED');
    expect(imapfs(['fsck', empty.map, '--json']).json).toMatchObject({ clean: true });
  });
});
