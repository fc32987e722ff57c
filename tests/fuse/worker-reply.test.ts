/**
 * A request dispatched on the main thread is answered from a worker thread by its handle; the
 * mount lives in this process, so it is only touched through child processes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { FuseSession } from '../../src/fuse/session';
import { reply } from '../../src/fuse/binding';
import { isMounted, run } from './helpers';

let session: FuseSession | undefined;
let worker: Worker | undefined;
const mountpoint = mkdtempSync(join(tmpdir(), 'imapfs-test-'));

afterAll(async () => {
  session?.unmount();
  await worker?.terminate();
  if (isMounted(mountpoint)) await run('fusermount3', ['-uz', mountpoint]).catch(() => undefined);
  rmSync(mountpoint, { recursive: true, force: true });
});

test('a worker thread answers lookup, getattr and read by handle', async () => {
  worker = new Worker(join(__dirname, 'fixtures', 'reply-worker.ts'), { execArgv: ['--require', 'tsx/cjs'] });
  const w = worker;
  const now = { sec: 1, nsec: 0 };
  const rootAttr = {
    ino: 1,
    mode: 0o40755,
    nlink: 2,
    uid: 0,
    gid: 0,
    rdev: 0,
    size: 0,
    blocks: 0,
    blksize: 4096,
    atime: now,
    mtime: now,
    ctime: now,
  };
  const inits: number[] = [];
  session = FuseSession.mount(
    mountpoint,
    {
      init: (c) => inits.push(c.maxWrite),
      lookup(req, parent, name) {
        if (parent !== 1 || name.toString() !== 'hello')
          return void reply.err(req.handle, osConstants.errno.ENOENT);
        w.postMessage({ op: 'lookup', handle: req.handle });
      },
      getattr(req, ino) {
        if (ino === 1) return void reply.attr(req.handle, rootAttr);
        w.postMessage({ op: 'getattr', handle: req.handle });
      },
      open: (req) => void reply.open(req.handle, { fh: 7 }),
      read: (req, _ino, size, offset) => void w.postMessage({ op: 'read', handle: req.handle, size, offset }),
      release: (req) => void reply.ok(req.handle),
    },
    { entryTimeout: 0, attrTimeout: 0 },
  );
  const { stdout } = await run('cat', [join(mountpoint, 'hello')]);
  expect(stdout).toBe('answered by a worker thread\n');
  const st = await run('stat', ['-c', '%s %Y', join(mountpoint, 'hello')]);
  expect(st.stdout.trim()).toBe('28 1700000000');
  await expect(run('cat', [join(mountpoint, 'nope')])).rejects.toBeTruthy();
  expect(inits).toEqual([1024 * 1024]);
  // A stale handle is refused, not a crash.
  expect(reply.err(12345 as Parameters<typeof reply.err>[0], 5)).toBe(false);
  session.unmount();
  expect(isMounted(mountpoint)).toBe(false);
});
