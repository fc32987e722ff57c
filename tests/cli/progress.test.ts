/**
 * Issue 7: long CLI operations report progress. With --json, stderr carries JSON progress lines
 * (the first at 0, the last at the total) and stdout stays one JSON result; without a TTY and without
 * --json, nothing is printed on stderr.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { progressReport } from '../../src/cli/progress';
import { imapfs } from '../helpers/cli';
import { pseudoRandom, tempDir } from '../helpers/fs-fixture';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('imapfs-progress-'));
});
afterAll(() => cleanup());

interface Line {
  progress: string;
  doneBytes: number;
  totalBytes: number | null;
  bytesPerSecond: number;
  etaSeconds: number | null;
}

function progressLines(stderr: string): Line[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

test('rate and ETA from bytes done, total and time', () => {
  expect(progressReport('put', 25, 100, 5)).toEqual({
    progress: 'put',
    doneBytes: 25,
    totalBytes: 100,
    elapsedSeconds: 5,
    bytesPerSecond: 5,
    etaSeconds: 15,
  });
  expect(progressReport('get', 10, 0, 2)).toMatchObject({ totalBytes: null, etaSeconds: null });
});

test('put, get and fsck with --json emit progress lines on stderr and one result on stdout', () => {
  const map = join(dir, 'm.png');
  const src = join(dir, 'src.bin');
  const size = 6 << 20;
  writeFileSync(src, pseudoRandom(size, 3));
  expect(imapfs(['mkfs', map, '--size', '32M']).status).toBe(0);

  const put = imapfs(['put', map, src, '/f', '--json']);
  expect(put.status).toBe(0);
  expect(put.json).not.toBeNull();
  const putLines = progressLines(put.stderr);
  expect(putLines.length).toBeGreaterThanOrEqual(2);
  expect(putLines.every((l) => l.progress === 'put' && l.totalBytes === size)).toBe(true);
  expect(putLines[0]!.doneBytes).toBe(0);
  expect(putLines[putLines.length - 1]!.doneBytes).toBe(size);

  const get = imapfs(['get', map, '/f', join(dir, 'back.bin'), '--json']);
  expect(get.status).toBe(0);
  const getLines = progressLines(get.stderr);
  expect(getLines[getLines.length - 1]).toMatchObject({ progress: 'get', doneBytes: size, totalBytes: size });

  const fsck = imapfs(['fsck', map, '--json']);
  expect(fsck.status).toBe(0);
  const fsckLines = progressLines(fsck.stderr);
  expect(fsckLines.length).toBeGreaterThanOrEqual(2);
  expect(fsckLines[fsckLines.length - 1]!.doneBytes).toBe(fsckLines[0]!.totalBytes);

  // Not a TTY and no --json: stderr stays empty.
  const quiet = imapfs(['get', map, '/f', join(dir, 'back2.bin')]);
  expect(quiet.status).toBe(0);
  expect(quiet.stderr).toBe('');
});
