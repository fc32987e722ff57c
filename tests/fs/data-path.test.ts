import { FileSystemIO } from '../../src/fs/filesystem-io';
import { rebuildStore, serializeStore } from '../../src/fs/metadata-image';
import { checkClusterCrcs, checkMetadata } from '../../src/fs/fsck';
import { CLUSTER_SIZE, ROOT_INO } from '../../src/fs/types';
import {
  MemoryClusterIO,
  ROOT,
  type Fixture,
  expectCode,
  makeFs,
  name,
  pseudoRandom,
} from '../helpers/fs-fixture';
import { join } from 'node:path';

let fx: Fixture;
let mem: MemoryClusterIO;
let io: FileSystemIO;
beforeEach(() => {
  mem = new MemoryClusterIO(4096);
  fx = makeFs(256, {
    grow: (_need, current) => {
      mem.resize(current * 4);
      return { side: 0, clusterCount: current * 4 };
    },
  });
  io = new FileSystemIO(fx.fs, mem);
});
afterEach(() => fx.cleanup());

const file = (n = 'f'): number => fx.fs.create(ROOT_INO, name(n), 0o644, ROOT).ino;

describe('data path', () => {
  it('round-trips unaligned writes with read-modify-write of head and tail', () => {
    const ino = file();
    const model = Buffer.alloc(50_000);
    const writes: [number, number][] = [
      [0, 10_000],
      [4095, 2],
      [9_000, 20_000],
      [100, 1],
      [30_000, 20_000],
      [12_345, 4096],
    ];
    writes.forEach(([off, len], i) => {
      const data = pseudoRandom(len, i + 1);
      io.write(ino, off, data);
      data.copy(model, off);
    });
    expect(fx.fs.getattr(ino).size).toBe(50_000);
    expect(io.read(ino, 0, 60_000).equals(model)).toBe(true);
    expect(io.read(ino, 4000, 200).equals(model.subarray(4000, 4200))).toBe(true);
    expect(checkMetadata(fx.store)).toEqual([]);
  });

  it('decomposes: prepareWrite allocates, commitWrite makes it live, abort returns clusters', () => {
    const ino = file();
    const plan = fx.fs.prepareWrite(ino, 0, 3 * CLUSTER_SIZE);
    expect(plan.runs).toEqual([{ start: 0, length: 3 }]);
    expect(fx.fs.planRead(ino, 0, 100).length).toBe(0); // not live yet
    fx.fs.abortWrite(plan);
    expect(fx.store.freeTotal()).toBe(256);
    const p2 = fx.fs.prepareWrite(ino, 100, 10);
    expect(p2.merge).toEqual([]); // nothing old to merge: beyond EOF
    fx.fs.commitWrite(p2, Buffer.alloc(4), 5n);
    expect(fx.fs.getattr(ino)).toMatchObject({ size: 110, mtimeNs: 5n });
    // Delivered again (a journal crash lost the reply): accepted, applied once.
    fx.fs.commitWrite(p2, Buffer.alloc(4), 9n);
    expect(fx.fs.getattr(ino)).toMatchObject({ size: 110, mtimeNs: 5n });
    // A plan whose clusters went back to free space is refused.
    expectCode(() => fx.fs.commitWrite(plan, Buffer.alloc(12)), 'IMAP_E_INVALID');
  });

  it('appends stay contiguous and merge into one extent', () => {
    const ino = file();
    for (let i = 0; i < 10; i += 1) io.write(ino, i * 65536, pseudoRandom(65536, i));
    const ext = fx.store.liveExtents(ino);
    expect(ext).toHaveLength(1);
    expect(ext[0]).toMatchObject({ fileCluster: 0, firstCluster: 0, length: 160 });
  });

  it('interleaved files each stay contiguous where space allows', () => {
    const a = file('a');
    io.write(a, 0, pseudoRandom(8192, 1));
    const b = file('b');
    io.write(b, 0, pseudoRandom(8192, 2));
    io.write(a, 8192, pseudoRandom(8192, 3)); // cannot continue (b is there): new run
    expect(fx.store.liveExtents(a).map((e) => e.firstCluster)).toEqual([0, 4]);
  });

  it('overwrite is copy-on-write and frees the old clusters only after the durable point', () => {
    const ino = file();
    io.write(ino, 0, pseudoRandom(4 * CLUSTER_SIZE, 1));
    const old = fx.store.liveExtents(ino)[0];
    io.write(ino, 0, pseudoRandom(4 * CLUSTER_SIZE, 2));
    const now = fx.store.liveExtents(ino)[0];
    expect(now?.firstCluster).not.toBe(old?.firstCluster);
    expect(fx.store.allPending()).toEqual([{ start: old?.firstCluster, length: 4 }]);
    fx.store.sync();
    expect(fx.fs.releasePending()).toBe(4);
    expect(checkMetadata(fx.store)).toEqual([]);
  });

  it('truncate: shrink frees, zeroes the tail; grow is sparse and reads zeros', () => {
    const ino = file();
    const data = pseudoRandom(5 * CLUSTER_SIZE, 9);
    io.write(ino, 0, data);
    io.truncate(ino, CLUSTER_SIZE + 100);
    expect(fx.store.usedClusters()).toBe(2);
    io.truncate(ino, 10 * CLUSTER_SIZE);
    const back = io.read(ino, 0, 10 * CLUSTER_SIZE);
    expect(back.subarray(0, CLUSTER_SIZE + 100).equals(data.subarray(0, CLUSTER_SIZE + 100))).toBe(true);
    expect(back.subarray(CLUSTER_SIZE + 100).every((b) => b === 0)).toBe(true);
    // write past EOF leaves a hole
    io.write(ino, 20 * CLUSTER_SIZE, Buffer.from('end'));
    expect(io.read(ino, 15 * CLUSTER_SIZE, 10).every((b) => b === 0)).toBe(true);
    expect(fx.store.usedClusters()).toBe(3);
    expect(checkMetadata(fx.store)).toEqual([]);
    // metadata-only setattr refuses a truncate that needs a data rewrite
    expectCode(() => fx.fs.setattr(ino, { size: 50 }, ROOT), 'IMAP_E_INVALID');
    fx.fs.setattr(ino, { size: CLUSTER_SIZE }, ROOT); // aligned: metadata only
    expect(fx.fs.getattr(ino).size).toBe(CLUSTER_SIZE);
  });

  it('fallocate reserves clusters that read as zeros', () => {
    const ino = file();
    fx.fs.fallocate(ino, 0, 10 * CLUSTER_SIZE);
    expect(fx.fs.getattr(ino).size).toBe(10 * CLUSTER_SIZE);
    expect(fx.store.usedClusters()).toBe(10);
    expect(io.read(ino, 0, 10 * CLUSTER_SIZE).every((b) => b === 0)).toBe(true);
    io.write(ino, 5, Buffer.from('x'));
    expect(io.read(ino, 0, 8).toString('latin1')).toBe('\0\0\0\0\0x\0\0');
  });

  it('detects a corrupt cluster on read with IMAP_E_CORRUPT_CLUSTER', () => {
    const ino = file();
    io.write(ino, 0, pseudoRandom(3 * CLUSTER_SIZE, 4));
    const e = fx.store.liveExtents(ino)[0];
    mem.data[((e?.firstCluster ?? 0) + 1) * CLUSTER_SIZE + 7] ^= 0x40;
    expectCode(() => io.read(ino, 0, 3 * CLUSTER_SIZE), 'IMAP_E_CORRUPT_CLUSTER');
    expect(io.read(ino, 0, 100).length).toBe(100); // other clusters still readable
    expect(checkClusterCrcs(fx.store, mem).map((p) => p.code)).toEqual(['IMAP_E_CORRUPT_CLUSTER']);
    expect(io.verifyFile(ino)).toEqual([1]);
  });

  it('grows the map when full', () => {
    const ino = file();
    const data = pseudoRandom(3 * 1024 * 1024, 7);
    io.write(ino, 0, data);
    expect(fx.store.info.clusterCount).toBe(1024);
    expect(io.read(ino, 0, data.length).equals(data)).toBe(true);
  });

  it('serializes the store and rebuilds an identical one', () => {
    const ino = file();
    io.write(ino, 0, pseudoRandom(100_000, 3));
    fx.fs.setxattr(ino, name('user.x'), Buffer.from([0, 1, 2]), 0, ROOT);
    fx.fs.symlink(ROOT_INO, name('l'), Buffer.from([0xff]), ROOT);
    fx.fs.mkdir(ROOT_INO, Buffer.from([0xfe, 0x80]), 0o700, ROOT);
    const image = serializeStore(fx.store);
    const rebuilt = rebuildStore(join(fx.dir, 'copy.imapdb'), image);
    try {
      expect(serializeStore(rebuilt).equals(image)).toBe(true);
      expect(rebuilt.getInode(ino)?.mtimeNs).toBe(fx.store.getInode(ino)?.mtimeNs);
      // inode numbers are never reused after a rebuild
      const next = rebuilt.insertInode({
        ...(rebuilt.getInode(ino) as NonNullable<ReturnType<typeof rebuilt.getInode>>),
      });
      expect(next).toBeGreaterThan(ino + 2);
    } finally {
      rebuilt.close();
    }
    expectCode(
      () => rebuildStore(join(fx.dir, 'bad.imapdb'), image.subarray(0, image.length - 3)),
      'IMAP_E_CORRUPT_METADATA',
    );
  });
});
