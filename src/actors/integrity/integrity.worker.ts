/**
 * The integrity actor: verifies cluster contents against their recorded CRC-32s, off the I/O path.
 *
 *   lifecycle: see runtime/lifecycle.ts
 *
 * Ownership: its counters. The background scanner, parity and repair are the integrity issue's.
 */
import { crc32 } from 'node:zlib';
import type { IntegrityOps } from '../../protocol/minor-actors';
import { CLUSTER_SIZE } from '../../fs/types';
import { ImapError } from '../../protocol/errors';
import { runActor } from '../runtime/host';

interface IntegrityState {
  verified: number;
  mismatches: number;
}

runActor<IntegrityOps, IntegrityState>({
  name: 'integrity',
  init: () => ({ verified: 0, mismatches: 0 }),
  handlers: {
    verify: (p, ctx) => {
      const ref = ctx.request.data;
      if (!ref) throw new ImapError('IMAP_E_INTERNAL', 'verify without a data slot');
      const data = ctx.slabs.view(ref);
      const crcs = Buffer.from(p.crcs.buffer, p.crcs.byteOffset, p.crcs.byteLength);
      const bad: number[] = [];
      for (let i = 0; i < p.count; i++) {
        const cluster = data.subarray(i * CLUSTER_SIZE, (i + 1) * CLUSTER_SIZE);
        if (crc32(cluster) !== crcs.readUInt32LE(i * 4)) bad.push(i);
      }
      ctx.state.verified += p.count;
      ctx.state.mismatches += bad.length;
      return bad;
    },
    stats: (_p, { state }) => ({ ...state }),
  },
});
