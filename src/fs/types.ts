/** Row shapes shared by the store, the allocator and the POSIX layer. */

export const CLUSTER_SIZE = 4096;
export const ROOT_INO = 1;
export const NAME_MAX = 255;
export const XATTR_VALUE_MAX = 64 * 1024;
export const XATTR_NAME_MAX = 255;
/** Largest file: 2^50 bytes keeps every byte offset exact in a JS number. */
export const FILE_SIZE_MAX = 2 ** 50;

export interface Inode {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  rdev: number;
  flags: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  btimeNs: bigint;
  /** Filesystem generation in which the inode was born. */
  generation: number;
}

export type NewInode = Omit<Inode, 'ino'>;

export interface Dirent {
  parent: number;
  name: Buffer;
  ino: number;
  /** File type bits (mode & S_IFMT) of the target, so readdir needs no inode lookup. */
  type: number;
  cookie: number;
}

export const EXTENT_UNWRITTEN = 1;

export interface Extent {
  id: number;
  ino: number;
  fileCluster: number;
  firstCluster: number;
  length: number;
  birthGen: number;
  deathGen: number | null;
  flags: number;
  /** length little-endian u32 CRC-32s. */
  crcs: Buffer;
}

/** A contiguous run of map clusters. */
export interface Run {
  start: number;
  length: number;
}

export interface Snapshot {
  id: number;
  name: string;
  generation: number;
  createdNs: bigint;
}

export interface MetaInfo {
  uuid: string;
  generation: number;
  schemaVersion: number;
  side: number;
  clusterCount: number;
}

export function nowNs(): bigint {
  // Date.now() has ms resolution; hrtime gives ns but from an arbitrary origin, so anchor it once.
  return NS_ORIGIN + process.hrtime.bigint();
}
const NS_ORIGIN = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
