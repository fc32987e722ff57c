/**
 * The imMD chunk: a compressed copy of all filesystem metadata, rewritten at each checkpoint.
 *
 *   off len field
 *     0   8 generation (u64 BE) of the metadata this copy holds
 *     8   4 uncompressed length (u32 BE)
 *    12   … zlib stream (RFC 1950) of the payload; its own Adler-32 makes a torn copy detectable
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { ImapError } from '../protocol/errors';

export interface MetadataCopy {
  generation: bigint;
  payload: Buffer;
}

export const METADATA_HEADER = 12;
/** The payload is read whole into memory; 1 GiB is far beyond any real metadata set. */
export const METADATA_MAX = 1 << 30;

export function encodeMetadata(meta: MetadataCopy): Buffer {
  if (typeof meta.generation !== 'bigint' || meta.generation < 0n || meta.generation >= 1n << 64n) {
    throw new ImapError('IMAP_E_INVALID', 'metadata generation must be a u64 bigint');
  }
  if (!Buffer.isBuffer(meta.payload) || meta.payload.length > METADATA_MAX) {
    throw new ImapError('IMAP_E_INVALID', 'metadata payload must be a Buffer of at most 1 GiB');
  }
  // Level 1: checkpoints are on the write path; size matters less than time.
  const packed = deflateSync(meta.payload, { level: 1 });
  const out = Buffer.allocUnsafe(METADATA_HEADER + packed.length);
  out.writeBigUInt64BE(meta.generation, 0);
  out.writeUInt32BE(meta.payload.length, 8);
  packed.copy(out, METADATA_HEADER);
  return out;
}

export function decodeMetadata(data: Buffer): MetadataCopy {
  if (data.length < METADATA_HEADER) {
    throw new ImapError('IMAP_E_CORRUPT_METADATA', `imMD chunk of ${data.length} bytes is too short`);
  }
  const generation = data.readBigUInt64BE(0);
  const length = data.readUInt32BE(8);
  if (length > METADATA_MAX) throw new ImapError('IMAP_E_CORRUPT_METADATA', `imMD length ${length}`);
  let payload: Buffer;
  try {
    payload = inflateSync(data.subarray(METADATA_HEADER), { maxOutputLength: Math.max(1, length) });
  } catch (err) {
    throw new ImapError('IMAP_E_CORRUPT_METADATA', 'imMD payload does not inflate', { cause: err });
  }
  if (payload.length !== length) {
    throw new ImapError(
      'IMAP_E_CORRUPT_METADATA',
      `imMD inflated to ${payload.length} bytes, header says ${length}`,
    );
  }
  return { generation, payload };
}
