/**
 * Adler-32 pieces that make the stream checksum updatable per stored block.
 *
 * For a stream d_0..d_{R-1}: A = 1 + Σ d_j and B = R + Σ (R − j)·d_j (mod 65521). A block of length
 * L at stream offset o contributes S = Σ d_i to A and (R − o)·S − W to B, with W = Σ i·d_i (i local).
 * So the total is a sum of per-block terms, and replacing a block's (S, W) updates A and B without
 * reading anything else.
 */
import { ADLER_MOD } from './layout';

/** zlib's NMAX: the longest run for which b cannot exceed 2^32 before reduction. */
const NMAX = 5552;

/**
 * Block sums of buf[off, off+len): out[0] = S mod 65521, out[1] = W mod 65521.
 * Runs the usual a/b recurrence from (0, 0), which ends with a = S and b = L·S − W.
 */
export function blockSums(buf: Uint8Array, off: number, len: number, out: Uint32Array): void {
  let a = 0;
  let b = 0;
  let i = off;
  const end = off + len;
  while (i < end) {
    const stop = Math.min(end, i + NMAX);
    // Unrolled by 8: this loop is the checkpoint's hot path after the CRC.
    const stop8 = stop - ((stop - i) & 7);
    while (i < stop8) {
      a += buf[i];
      b += a;
      a += buf[i + 1];
      b += a;
      a += buf[i + 2];
      b += a;
      a += buf[i + 3];
      b += a;
      a += buf[i + 4];
      b += a;
      a += buf[i + 5];
      b += a;
      a += buf[i + 6];
      b += a;
      a += buf[i + 7];
      b += a;
      i += 8;
    }
    while (i < stop) {
      a += buf[i++];
      b += a;
    }
    a %= ADLER_MOD;
    b %= ADLER_MOD;
  }
  const s = a;
  const w = mod((len % ADLER_MOD) * s - b);
  out[0] = s;
  out[1] = w;
}

export function mod(v: number): number {
  const r = v % ADLER_MOD;
  return r < 0 ? r + ADLER_MOD : r;
}

/** Coefficient (R − o) mod 65521 of a block's S in B. */
export function blockCoefficient(rawLength: number, blockOffset: number): number {
  return (rawLength - blockOffset) % ADLER_MOD;
}

/** Running Adler-32 state (A, B) of the whole raw stream. */
export class StreamAdler {
  a: number;
  b: number;

  constructor(a: number, b: number) {
    this.a = a;
    this.b = b;
  }

  /** Adler-32 of an all-zero stream of `rawLength` bytes: A = 1, B = R. */
  static ofZeros(rawLength: number): StreamAdler {
    return new StreamAdler(1, rawLength % ADLER_MOD);
  }

  static fromValue(value: number): StreamAdler {
    return new StreamAdler(value & 0xffff, (value >>> 16) & 0xffff);
  }

  get value(): number {
    return ((this.b << 16) | this.a) >>> 0;
  }

  /** Replaces a block's contribution: old sums (s0, w0) → new sums (s1, w1). */
  replace(coefficient: number, s0: number, w0: number, s1: number, w1: number): void {
    const ds = s1 - s0;
    this.a = mod(this.a + ds);
    this.b = mod(this.b + coefficient * ds - (w1 - w0));
  }
}
