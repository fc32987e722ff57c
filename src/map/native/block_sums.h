/*
 * Adler-32 block sums as src/map/adler32.ts defines them: S = sum of the bytes, W = sum of i * d_i
 * with i local to the block, both mod 65521. The TypeScript version stays the reference.
 */
#ifndef IMAPFS_BLOCK_SUMS_H
#define IMAPFS_BLOCK_SUMS_H

#include <stdint.h>

#define ADLER_MOD 65521u
#define ADLER_NMAX 5552

static inline void block_sums_of(const uint8_t *p, int64_t len, uint32_t *s_out, uint32_t *w_out) {
  uint64_t a = 0, b = 0;
  int64_t left = len;
  while (left > 0) {
    int64_t n = left < ADLER_NMAX ? left : ADLER_NMAX;
    left -= n;
    while (n >= 8) {
      a += p[0]; b += a; a += p[1]; b += a; a += p[2]; b += a; a += p[3]; b += a;
      a += p[4]; b += a; a += p[5]; b += a; a += p[6]; b += a; a += p[7]; b += a;
      p += 8;
      n -= 8;
    }
    while (n-- > 0) {
      a += *p++;
      b += a;
    }
    a %= ADLER_MOD;
    b %= ADLER_MOD;
  }
  /* W = (L mod M) * S - B, mod M (adler32.ts: blockSums). */
  *s_out = (uint32_t)a;
  *w_out = (uint32_t)(((uint64_t)(len % ADLER_MOD) * a + ADLER_MOD - b) % ADLER_MOD);
}

#endif
