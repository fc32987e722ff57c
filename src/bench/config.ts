/**
 * Sizes and time bounds of one bench run. `full` is what the roadmap asks for (1 GiB, 10,000 files);
 * `quick` keeps all four targets under five minutes on a 2-core VM. Tests shrink everything further
 * through IMAPFS_BENCH_OVERRIDES (a JSON object of BenchSizes fields) so a real run takes seconds.
 */
import { z } from 'zod';

const MiB = 1024 * 1024;

export const BenchSizesSchema = z.object({
  /** The sequential file; also the file that the random and mixed jobs address. */
  seqFileBytes: z.number().int().positive(),
  /** Upper bound on each sequential job, so a slow target cannot blow the run's time budget. */
  seqMaxSeconds: z.number().positive(),
  /** Length of each time-bounded job (random read, random write, mixed). */
  randSeconds: z.number().positive(),
  /** Files created, stat'ed, renamed and unlinked by the metadata job, and the bound on each phase. */
  metaFiles: z.number().int().positive(),
  metaMaxSeconds: z.number().positive(),
  /** The working set re-read by the cache job, and how many warm passes follow the cold one. */
  cacheSetBytes: z.number().int().positive(),
  cachePasses: z.number().int().min(1),
  /** Size of the imapfs map and of the fuse2fs image ("the same size"). */
  imageBytes: z.number().int().positive(),
});

export type BenchSizes = z.infer<typeof BenchSizesSchema>;

export const FULL: BenchSizes = {
  seqFileBytes: 1024 * MiB,
  seqMaxSeconds: 45,
  randSeconds: 10,
  metaFiles: 10_000,
  metaMaxSeconds: 20,
  cacheSetBytes: 128 * MiB,
  cachePasses: 3,
  imageBytes: 3072 * MiB,
};

export const QUICK: BenchSizes = {
  seqFileBytes: 256 * MiB,
  seqMaxSeconds: 10,
  randSeconds: 2,
  metaFiles: 2_000,
  metaMaxSeconds: 4,
  cacheSetBytes: 32 * MiB,
  cachePasses: 2,
  imageBytes: 1024 * MiB,
};

export const OVERRIDES_ENV = 'IMAPFS_BENCH_OVERRIDES';

/** The preset, with any fields from IMAPFS_BENCH_OVERRIDES replacing its values. */
export function resolveSizes(quick: boolean, env: NodeJS.ProcessEnv = process.env): BenchSizes {
  const base = quick ? QUICK : FULL;
  const raw = env[OVERRIDES_ENV];
  if (!raw) return base;
  const parsed = BenchSizesSchema.partial().safeParse(JSON.parse(raw));
  if (!parsed.success) {
    throw new Error(`${OVERRIDES_ENV} is not valid: ${parsed.error.message}`);
  }
  return { ...base, ...parsed.data };
}
