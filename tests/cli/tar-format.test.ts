/**
 * The tar writer and reader in process, on what a tree rarely shows: paths past ustar's limits (with
 * and without UTF-8), times before 1970 with nanoseconds, ids and sizes past octal range, pax record
 * lengths at a digit boundary, input cut at every point, and input arriving in odd chunk sizes.
 */
import { ByteSource } from '../../src/cli/archive/byte-source';
import type { TarEntry } from '../../src/cli/archive/entry';
import { decodePax, encodePax, formatPaxTime, parsePaxTime } from '../../src/cli/archive/pax';
import { BLOCK, decodeUstar, encodeUstar } from '../../src/cli/archive/tar-header';
import { TarReader } from '../../src/cli/archive/tar-reader';
import { type Member, TarWriter } from '../../src/cli/archive/tar-writer';
import { pseudoRandom } from '../helpers/fs-fixture';

const member = (over: Partial<Member>): Member => ({
  path: Buffer.from('./f'),
  kind: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: 0,
  mtimeNs: 1_600_000_000n * 1_000_000_000n,
  atimeNs: null,
  linkpath: Buffer.alloc(0),
  devmajor: 0,
  devminor: 0,
  ...over,
});

async function pack(members: Array<{ m: Member; data?: Buffer }>): Promise<Buffer> {
  const parts: Buffer[] = [];
  const w = new TarWriter(async (b) => {
    parts.push(Buffer.from(b));
  });
  for (const { m, data } of members) {
    await w.member({ ...m, size: data?.length ?? 0 });
    if (data) await w.data(data);
    await w.endMember();
  }
  await w.finish();
  return Buffer.concat(parts);
}

async function* chunksOf(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function unpack(archive: Buffer, chunk = 700): Promise<Array<{ e: TarEntry; data: Buffer }>> {
  const r = new TarReader(new ByteSource(chunksOf(archive, chunk)));
  const out: Array<{ e: TarEntry; data: Buffer }> = [];
  for (let e = await r.next(); e; e = await r.next()) {
    const parts: Buffer[] = [];
    await r.data((b) => parts.push(Buffer.from(b)));
    out.push({ e, data: Buffer.concat(parts) });
  }
  return out;
}

test('long, non-UTF-8 paths, old and fractional times, big ids: written and read back exactly', async () => {
  const longAscii = Buffer.from(`./${'d'.repeat(140)}/${'n'.repeat(90)}`); // fits ustar's prefix + name
  const tooLong = Buffer.from(`./${'x/'.repeat(200)}end`); // fits neither: a pax path
  const binary = Buffer.concat([Buffer.from(`./${'y'.repeat(300)}/`), Buffer.from([0xff, 0xfe, 0x80])]);
  const members = [
    { m: member({ path: longAscii }), data: Buffer.from('ascii') },
    { m: member({ path: tooLong, mtimeNs: -1_250_000_000n, atimeNs: 5n }), data: pseudoRandom(3000, 1) },
    { m: member({ path: binary, uid: 2 ** 32 - 2, gid: 3_000_000 }), data: Buffer.alloc(0) },
    { m: member({ path: Buffer.from('./l'), kind: 'symlink', linkpath: binary }) },
    { m: member({ path: Buffer.from('./h'), kind: 'hardlink', linkpath: tooLong }) },
    { m: member({ path: Buffer.from('./dev'), kind: 'chardev', devmajor: 4095, devminor: 1 << 19 }) },
  ];
  const archive = await pack(members);
  expect(archive.length % (20 * BLOCK)).toBe(0);
  // The first member needed no pax header: it is a plain ustar header with a prefix.
  expect(archive[156]).toBe(0x30);
  for (const chunk of [1, 511, 512, 700, 1 << 20]) {
    const back = await unpack(archive, chunk);
    expect(back).toHaveLength(members.length);
    back.forEach(({ e, data }, i) => {
      const want = members[i]!;
      const { offset: _offset, ...got } = e;
      expect(got).toEqual({ ...want.m, size: want.data?.length ?? 0 });
      expect(data.equals(want.data ?? Buffer.alloc(0))).toBe(true);
    });
  }
});

test('numbers past octal range: GNU base-256 in the ustar header', () => {
  const fields = {
    name: Buffer.from('big'),
    mode: 0o644,
    uid: 2 ** 40,
    gid: 1,
    size: 2 ** 45 + 3,
    mtime: 8n ** 12n,
    typeflag: 0x30,
    linkname: Buffer.alloc(0),
    devmajor: 0,
    devminor: 0,
    prefix: Buffer.alloc(0),
  };
  expect(decodeUstar(encodeUstar(fields), 0)).toEqual(fields);
});

test('pax records: lengths across a digit boundary, later records win, empty values unset', () => {
  for (let n = 80; n < 110; n += 1) {
    const value = Buffer.alloc(n, 0x61);
    const data = encodePax([['comment', value]]);
    expect(Number(data.toString('latin1').split(' ')[0])).toBe(data.length);
    const into = new Map<string, Buffer>();
    decodePax(data, 0, into);
    expect(into.get('comment')?.equals(value)).toBe(true);
  }
  const into = new Map([['uid', Buffer.from('7')]]);
  decodePax(
    encodePax([
      ['uid', Buffer.alloc(0)],
      ['path', Buffer.from('a')],
      ['path', Buffer.from('b')],
    ]),
    0,
    into,
  );
  expect([...into.entries()]).toEqual([['path', Buffer.from('b')]]);
  expect(() => decodePax(Buffer.from('99 path=x\n'), 0, new Map())).toThrow(/malformed pax record/);
});

test('pax times: sign, fraction, more than nine digits', () => {
  for (const ns of [0n, 1n, -1n, 1_500_000_000_123_456_789n, -1_250_000_000n, 7n * 1_000_000_000n]) {
    expect(parsePaxTime(Buffer.from(formatPaxTime(ns)), 'mtime', 0)).toBe(ns);
  }
  expect(formatPaxTime(-1_250_000_000n)).toBe('-1.250000000');
  expect(parsePaxTime(Buffer.from('12.1234567891234'), 'mtime', 0)).toBe(12_123_456_789n);
  expect(() => parsePaxTime(Buffer.from('soon'), 'mtime', 0)).toThrow(/not a time/);
});

test('input cut anywhere before the end marker is IMAP_E_ARCHIVE_TRUNCATED, never a short success', async () => {
  const archive = await pack([
    { m: member({ path: Buffer.from('./a'), atimeNs: 1n }), data: pseudoRandom(5000, 2) },
    { m: member({ path: Buffer.from('./b') }), data: pseudoRandom(700, 3) },
  ]);
  // The end-of-archive marker starts at the block after the last member's data.
  let last = archive.length - 1;
  while (archive[last] === 0) last -= 1;
  const end = Math.ceil((last + 1) / BLOCK) * BLOCK;
  for (let cut = 0; cut < end; cut += 97) {
    await expect(unpack(archive.subarray(0, cut))).rejects.toMatchObject({
      code: 'IMAP_E_ARCHIVE_TRUNCATED',
    });
  }
  await expect(unpack(archive.subarray(0, end))).rejects.toMatchObject({ code: 'IMAP_E_ARCHIVE_TRUNCATED' });
  // One zero block is enough (GNU tar accepts a lone one), and the record padding is optional.
  expect(await unpack(archive.subarray(0, end + BLOCK))).toHaveLength(2);
  expect(await unpack(archive.subarray(0, end + 2 * BLOCK))).toHaveLength(2);
});
