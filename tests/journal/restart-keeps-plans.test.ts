/**
 * A journal worker that crashes while the mount serves is replaced, and the plans the front end
 * prepared before the crash stay valid: their clusters stay reserved (a prepare after the restart
 * never hands them out again while their map writes may still run), their commits are accepted
 * after the restart, and a commit delivered twice (the reply of the first was lost in the crash)
 * is applied once. Open handles survive the restart. With `crash-after` (the worker dies after the
 * op, before its reply) every store-changing op is applied once and answered with its kept reply.
 * Real journal and scheduler workers on a real map and SQLite sidecar.
 */
import { crc32 } from 'node:zlib';
import { rmSync } from 'node:fs';
import { startDaemon, type Daemon } from '../cache/helpers';
import { CLUSTER_SIZE, type Run } from '../../src/fs/types';
import type { WritePlan } from '../../src/fs/data-path';

jest.setTimeout(120_000);

const ROOT = { uid: 0, gid: 0, umask: 0o022 };
const MIB = 1 << 20;
const opts = { idempotent: true } as const;

let d: Daemon;

beforeAll(async () => {
  d = await startDaemon({
    files: {},
    l1Bytes: 8 * MIB,
    l2Bytes: 0,
    side: 4096,
    // Every test crashes the journal: more restarts than the daemon's budget allows in a minute.
    journalRestart: { maxRestarts: 100, baseDelayMs: 10, maxDelayMs: 20 },
  });
});

afterAll(async () => {
  await d?.stop();
  if (d) rmSync(d.dir, { recursive: true, force: true });
});

function clustersOf(runs: readonly Run[]): Set<number> {
  const out = new Set<number>();
  for (const r of runs) for (let c = r.start; c < r.start + r.length; c++) out.add(c);
  return out;
}

function overlap(a: readonly Run[], b: readonly Run[]): number[] {
  const inA = clustersOf(a);
  return [...clustersOf(b)].filter((c) => inA.has(c));
}

/** CRCs of clusters holding zeros: the journal does not read data, so any consistent CRCs do. */
function zeroCrcs(plan: WritePlan): Uint8Array {
  const crc = crc32(Buffer.alloc(CLUSTER_SIZE));
  const out = Buffer.alloc(plan.clusterCount * 4);
  for (let i = 0; i < plan.clusterCount; i++) out.writeUInt32LE(crc, i * 4);
  return out;
}

/**
 * Arms a one-shot fault of `mode` on `op`, sends the request that meets it, and waits until the
 * journal is back. `crash`: the worker dies as the request arrives; `crash-after`: once it is applied.
 */
async function crashing<T>(mode: 'crash' | 'crash-after', op: string, send: () => Promise<T>): Promise<T> {
  const before = d.journal.stats().restarts;
  await d.journal.setFault({ mode, count: 1, ops: [op] });
  const result = await send();
  await waitForRestart(before);
  return result;
}

/** Crashes the journal on a getattr (delivered again to the new worker). */
async function crashJournal(): Promise<void> {
  await crashing('crash', 'getattr', () => d.journal.request('getattr', { ino: 1 }, opts));
}

async function waitForRestart(before: number): Promise<void> {
  const until = Date.now() + 60_000;
  while (d.journal.stats().restarts <= before || d.journal.stats().state !== 'ready') {
    if (Date.now() > until) throw new Error('the journal did not restart');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function newFile(name: string): Promise<number> {
  const inode = await d.journal.request(
    'create',
    { parent: 1, name: Buffer.from(name), mode: 0o100644, caller: ROOT },
    opts,
  );
  return inode.ino;
}

test('a prepare after the restart does not get the clusters of a plan prepared before it', async () => {
  const ino = await newFile('a');
  const before = await d.journal.request('prepareWrite', { ino, offset: 0, length: MIB }, opts);
  await crashJournal();
  const after = await d.journal.request('prepareWrite', { ino, offset: MIB, length: MIB }, opts);
  expect(overlap(before.runs, after.runs)).toEqual([]);

  // Both commit, in order, after the restart.
  await d.journal.request('commitWrite', { plan: before, crcs: zeroCrcs(before), mtimeNs: 1n }, opts);
  await d.journal.request('commitWrite', { plan: after, crcs: zeroCrcs(after), mtimeNs: 2n }, opts);
  expect((await d.journal.request('getattr', { ino }, opts)).size).toBe(2 * MIB);
  const plan = await d.journal.request('planRead', { ino, offset: 0, length: 2 * MIB }, opts);
  const live = plan.segments.flatMap((s) =>
    s.mapCluster === null ? [] : [{ start: s.mapCluster, length: s.count }],
  );
  expect([...clustersOf(live)].sort((x, y) => x - y)).toEqual(
    [...clustersOf([...before.runs, ...after.runs])].sort((x, y) => x - y),
  );
});

test('a commit delivered again after it was applied is accepted once', async () => {
  const ino = await newFile('b');
  const plan = await d.journal.request('prepareWrite', { ino, offset: 0, length: MIB }, opts);
  const commit = { plan, crcs: zeroCrcs(plan), mtimeNs: 5n };
  await d.journal.request('commitWrite', commit, opts);
  await crashJournal();
  // The same message again, as the handle redelivers it when the reply was lost in the crash.
  const inode = await d.journal.request('commitWrite', commit, opts);
  expect(inode.size).toBe(MIB);
  // An abort after the commit is a no-op: the clusters are the file's, not free space.
  await d.journal.request('abortWrite', { plan }, opts);
  const next = await d.journal.request(
    'prepareWrite',
    { ino: await newFile('c'), offset: 0, length: MIB },
    opts,
  );
  expect(overlap(plan.runs, next.runs)).toEqual([]);
  await d.journal.request('abortWrite', { plan: next }, opts);
});

test('a commit the crash interrupted is delivered to the new worker and applies', async () => {
  const ino = await newFile('d');
  const plan = await d.journal.request('prepareWrite', { ino, offset: 4096, length: 3 * MIB }, opts);
  const inode = await crashing('crash', 'commitWrite', () =>
    d.journal.request('commitWrite', { plan, crcs: zeroCrcs(plan), mtimeNs: 7n }, opts),
  );
  expect(inode.size).toBe(4096 + 3 * MIB);
});

test('a truncate commit delivered twice is applied once', async () => {
  const ino = await newFile('e');
  const w = await d.journal.request('prepareWrite', { ino, offset: 0, length: 3 * CLUSTER_SIZE }, opts);
  await d.journal.request('commitWrite', { plan: w, crcs: zeroCrcs(w), mtimeNs: 1n }, opts);
  const plan = await d.journal.request('prepareTruncate', { ino, size: CLUSTER_SIZE + 100 }, opts);
  expect(plan.tail).not.toBeNull();
  const commit = { plan, tailCrc: zeroCrcs(plan.tail!) };
  await d.journal.request('commitTruncate', commit, opts);
  await crashJournal();
  expect((await d.journal.request('commitTruncate', commit, opts)).size).toBe(CLUSTER_SIZE + 100);
});

test('a file unlinked while open lives until its last close, across a journal restart', async () => {
  const ino = await newFile('open-then-unlinked');
  const w = await d.journal.request('prepareWrite', { ino, offset: 0, length: CLUSTER_SIZE }, opts);
  await d.journal.request('commitWrite', { plan: w, crcs: zeroCrcs(w), mtimeNs: 1n }, opts);
  await d.journal.request('open', { ino, flags: 0, caller: ROOT }, opts);
  await crashJournal();
  await d.journal.request(
    'unlink',
    { parent: 1, name: Buffer.from('open-then-unlinked'), caller: ROOT },
    opts,
  );
  // Still open: its data stays readable through the handle.
  expect(await d.journal.request('getattr', { ino }, opts)).toMatchObject({ nlink: 0, size: CLUSTER_SIZE });
  expect((await d.journal.request('planRead', { ino, offset: 0, length: CLUSTER_SIZE }, opts)).length).toBe(
    CLUSTER_SIZE,
  );
  await d.journal.request('release', { ino }, opts);
  await expect(d.journal.request('getattr', { ino }, opts)).rejects.toMatchObject({
    code: 'IMAP_E_NOT_FOUND',
  });
});

describe('a crash after the op, before its reply (crash-after): the op is applied once', () => {
  const afterCrash = <T>(op: string, send: () => Promise<T>): Promise<T> => crashing('crash-after', op, send);

  test('create, mkdir, unlink and rename answer as if delivered once', async () => {
    const made = await afterCrash('create', () =>
      d.journal.request(
        'create',
        { parent: 1, name: Buffer.from('once'), mode: 0o100644, caller: ROOT },
        opts,
      ),
    );
    const found = await d.journal.request(
      'lookup',
      { parent: 1, name: Buffer.from('once'), caller: ROOT },
      opts,
    );
    expect(found.ino).toBe(made.ino);
    const dir = await afterCrash('mkdir', () =>
      d.journal.request(
        'mkdir',
        { parent: 1, name: Buffer.from('dir-once'), mode: 0o40755, caller: ROOT },
        opts,
      ),
    );
    expect(dir.nlink).toBe(2);
    await afterCrash('rename', () =>
      d.journal.request(
        'rename',
        {
          parent: 1,
          name: Buffer.from('once'),
          newParent: dir.ino,
          newName: Buffer.from('moved'),
          flags: 0,
          caller: ROOT,
        },
        opts,
      ),
    );
    await afterCrash('unlink', () =>
      d.journal.request('unlink', { parent: dir.ino, name: Buffer.from('moved'), caller: ROOT }, opts),
    );
    await expect(d.journal.request('getattr', { ino: made.ino }, opts)).rejects.toMatchObject({
      code: 'IMAP_E_NOT_FOUND',
    });
  });

  test('a release is counted once: the file lives until its other handle closes', async () => {
    const ino = await newFile('two-handles');
    await d.journal.request('open', { ino, caller: ROOT }, opts);
    await d.journal.request('open', { ino, caller: ROOT }, opts);
    await d.journal.request('unlink', { parent: 1, name: Buffer.from('two-handles'), caller: ROOT }, opts);
    await afterCrash('release', () => d.journal.request('release', { ino }, opts));
    expect(await d.journal.request('getattr', { ino }, opts)).toMatchObject({ nlink: 0 });
    await d.journal.request('release', { ino }, opts);
    await expect(d.journal.request('getattr', { ino }, opts)).rejects.toMatchObject({
      code: 'IMAP_E_NOT_FOUND',
    });
  });

  test('a commitWrite is applied once and its reply is the one it gave', async () => {
    const ino = await newFile('commit-once');
    const plan = await d.journal.request('prepareWrite', { ino, offset: 0, length: MIB }, opts);
    const inode = await afterCrash('commitWrite', () =>
      d.journal.request('commitWrite', { plan, crcs: zeroCrcs(plan), mtimeNs: 11n }, opts),
    );
    expect(inode).toMatchObject({ ino, size: MIB, mtimeNs: 11n });
    const read = await d.journal.request('planRead', { ino, offset: 0, length: MIB }, opts);
    expect(read.segments.map((seg) => ({ start: seg.mapCluster, length: seg.count }))).toEqual(plan.runs);
  });
});
