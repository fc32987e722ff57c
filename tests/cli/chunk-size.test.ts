/**
 * Issue 7: the CLI streams in a configurable chunk size (--chunk-size, default 1M like io.chunk_bytes)
 * on put, get, import and export. Sizes that are not whole clusters, or out of range, are refused.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorCode, imapfs } from '../helpers/cli';
import { pseudoRandom, tempDir } from '../helpers/fs-fixture';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('imapfs-chunk-'));
});
afterAll(() => cleanup());

function ok(args: string[]): Record<string, unknown> {
  const r = imapfs([...args, '--json']);
  if (r.status !== 0) throw new Error(`imapfs ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

test('put, get, export and import move the same bytes in 4K, 12K and 64K chunks', () => {
  // Not a multiple of any chunk size: every loop ends on a short chunk.
  const data = pseudoRandom(3 * 1024 * 1024 + 5000, 42);
  const src = join(dir, 'src.bin');
  writeFileSync(src, data);
  const map = join(dir, 'a.png');
  ok(['mkfs', map, '--size', '16M']);
  expect(ok(['put', map, src, '/f', '--chunk-size', '64K']).chunkBytes).toBe(65536);
  const out = join(dir, 'out.bin');
  expect(ok(['get', map, '/f', out, '--chunk-size', '4K']).chunkBytes).toBe(4096);
  expect(readFileSync(out).equals(data)).toBe(true);

  const tar = join(dir, 'a.tar');
  ok(['export', map, '/', '-o', tar, '--chunk-size', '12K']);
  const map2 = join(dir, 'b.png');
  ok(['mkfs', map2, '--size', '16M']);
  ok(['import', map2, tar, '/', '--chunk-size', '12K']);
  const out2 = join(dir, 'out2.bin');
  ok(['get', map2, '/f', out2]);
  expect(readFileSync(out2).equals(data)).toBe(true);
});

test.each(['5000', '0', '128M', '2K', 'lots'])('--chunk-size %s is refused with IMAP_E_USAGE', (size) => {
  const map = join(dir, 'c.png');
  imapfs(['mkfs', map, '--size', '4M']);
  const r = imapfs(['get', map, '/', join(dir, 'x'), '--chunk-size', size, '--json']);
  expect(r.status).not.toBe(0);
  expect(errorCode(r)).toBe('IMAP_E_USAGE');
});
