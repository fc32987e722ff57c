/** Real SQLite stores in temp dirs, and an in-memory ClusterIO, for tests of src/fs. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Caller } from '../../src/fs/access';
import type { ClusterIO } from '../../src/fs/filesystem-io';
import { FileSystem, type FileSystemOptions } from '../../src/fs/filesystem';
import { MetadataStore } from '../../src/fs/store';
import { CLUSTER_SIZE } from '../../src/fs/types';

export const ROOT: Caller = { uid: 0, gid: 0, umask: 0o022 };
export const ALICE: Caller = { uid: 1000, gid: 1000, groups: [1000], umask: 0o022 };
export const BOB: Caller = { uid: 1001, gid: 1001, groups: [1001], umask: 0o022 };

export function tempDir(prefix = 'imapfs-fs-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Fixture {
  dir: string;
  dbPath: string;
  store: MetadataStore;
  fs: FileSystem;
  reopen(options?: FileSystemOptions): void;
  cleanup(): void;
}

export function makeFs(clusterCount = 1024, options: FileSystemOptions = {}): Fixture {
  const { dir, cleanup } = tempDir();
  const dbPath = join(dir, 'map.png.imapdb');
  const store = MetadataStore.create(dbPath, {
    uuid: '00000000-0000-4000-8000-000000000001',
    side: 64,
    clusterCount,
  });
  FileSystem.format(store, { uid: 0, gid: 0 });
  const fx: Fixture = {
    dir,
    dbPath,
    store,
    fs: new FileSystem(store, options),
    reopen(opts = options) {
      fx.store.close();
      fx.store = MetadataStore.open(dbPath);
      fx.fs = new FileSystem(fx.store, opts);
    },
    cleanup() {
      fx.store.close();
      cleanup();
    },
  };
  return fx;
}

/** A map's cluster space in memory; grows when told to. */
export class MemoryClusterIO implements ClusterIO {
  data: Buffer;
  writes = 0;
  constructor(clusters: number) {
    this.data = Buffer.alloc(clusters * CLUSTER_SIZE);
  }
  resize(clusters: number): void {
    const next = Buffer.alloc(clusters * CLUSTER_SIZE);
    this.data.copy(next);
    this.data = next;
  }
  read(first: number, count: number, out: Buffer, outOffset: number): void {
    this.data.copy(out, outOffset, first * CLUSTER_SIZE, (first + count) * CLUSTER_SIZE);
  }
  write(first: number, data: Buffer, dataOffset: number, count: number): void {
    this.writes += 1;
    data.copy(this.data, first * CLUSTER_SIZE, dataOffset, dataOffset + count * CLUSTER_SIZE);
  }
}

export const name = (s: string): Buffer => Buffer.from(s);

/** Deterministic pseudo-random bytes (xorshift32), the same for the same seed. */
export function pseudoRandom(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  for (; i < length; i += 1) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function expectCode(fn: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeDefined();
  expect((thrown as { code?: string }).code).toBe(code);
}
