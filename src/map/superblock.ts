/**
 * The superblock: data of the imSB chunk, 64 bytes, big endian like the rest of PNG.
 *
 *   off len field
 *     0   8 magic "imapfsSB"
 *     8   2 formatVersion (1)
 *    10   2 flags (0; readers of v1 reject unknown bits)
 *    12   1 state: 0 clean, 1 dirty (pixels written since the last checkpoint; checksums may be stale)
 *    13   3 reserved, 0
 *    16  16 uuid (RFC 4122 bytes)
 *    32   4 side
 *    36   4 clusterSize (4096)
 *    40   4 blockPayload P (32768)
 *    44   4 reserved, 0
 *    48   8 generation (bumped by every checkpoint)
 *    56   8 createdMs (ms since the Unix epoch)
 *
 * No internal checksum: the chunk CRC covers these bytes.
 */
import { randomUUID } from 'node:crypto';
import { ImapError } from '../protocol/errors';
import { CLUSTER_SIZE, FORMAT_VERSION, SUPERBLOCK_LENGTH, isValidSide } from './layout';

export const SUPERBLOCK_MAGIC = Buffer.from('imapfsSB', 'latin1');

export type MapState = 'clean' | 'dirty';

export interface Superblock {
  formatVersion: number;
  flags: number;
  state: MapState;
  /** Canonical 8-4-4-4-12 lower-case hex. */
  uuid: string;
  side: number;
  clusterSize: number;
  blockPayload: number;
  generation: bigint;
  createdMs: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function newUuid(): string {
  return randomUUID();
}

export function isValidUuid(uuid: string): boolean {
  return UUID_RE.test(uuid.toLowerCase());
}

export function encodeSuperblock(sb: Superblock, buf: Buffer, at: number): void {
  buf.fill(0, at, at + SUPERBLOCK_LENGTH);
  SUPERBLOCK_MAGIC.copy(buf, at);
  buf.writeUInt16BE(sb.formatVersion, at + 8);
  buf.writeUInt16BE(sb.flags, at + 10);
  buf[at + 12] = sb.state === 'dirty' ? 1 : 0;
  Buffer.from(sb.uuid.replace(/-/g, ''), 'hex').copy(buf, at + 16);
  buf.writeUInt32BE(sb.side, at + 32);
  buf.writeUInt32BE(sb.clusterSize, at + 36);
  buf.writeUInt32BE(sb.blockPayload, at + 40);
  buf.writeBigUInt64BE(sb.generation, at + 48);
  buf.writeBigUInt64BE(BigInt(sb.createdMs), at + 56);
}

/**
 * Decodes and validates superblock bytes. `data` is the chunk data; its CRC was checked by the caller.
 * Throws NOT_A_MAP for a wrong magic, VERSION_TOO_NEW for a newer version (checked before the
 * length, so a future format may grow the chunk), CORRUPT_SUPERBLOCK for anything else.
 */
export function decodeSuperblock(data: Buffer): Superblock {
  if (data.length < 10 || !data.subarray(0, 8).equals(SUPERBLOCK_MAGIC)) {
    throw new ImapError('IMAP_E_NOT_A_MAP', 'imSB chunk has no imapfs magic');
  }
  const formatVersion = data.readUInt16BE(8);
  if (formatVersion > FORMAT_VERSION) {
    throw new ImapError(
      'IMAP_E_VERSION_TOO_NEW',
      `format version ${formatVersion}, this build reads ${FORMAT_VERSION}`,
    );
  }
  const bad = (why: string): ImapError => new ImapError('IMAP_E_CORRUPT_SUPERBLOCK', why);
  if (formatVersion === 0) throw bad('format version 0');
  if (data.length !== SUPERBLOCK_LENGTH) throw bad(`length ${data.length}, expected ${SUPERBLOCK_LENGTH}`);
  const flags = data.readUInt16BE(10);
  if (flags !== 0) throw bad(`unknown flags 0x${flags.toString(16)}`);
  const stateByte = data[12];
  if (stateByte > 1) throw bad(`state ${stateByte}`);
  const hex = data.toString('hex', 16, 32);
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const side = data.readUInt32BE(32);
  if (!isValidSide(side)) throw bad(`side ${side}`);
  const clusterSize = data.readUInt32BE(36);
  if (clusterSize !== CLUSTER_SIZE) throw bad(`cluster size ${clusterSize}`);
  const blockPayload = data.readUInt32BE(40);
  if (blockPayload < 1024 || blockPayload > 65535) throw bad(`block payload ${blockPayload}`);
  const createdMs = Number(data.readBigUInt64BE(56));
  return {
    formatVersion,
    flags,
    state: stateByte === 1 ? 'dirty' : 'clean',
    uuid,
    side,
    clusterSize,
    blockPayload,
    generation: data.readBigUInt64BE(48),
    createdMs,
  };
}
