/**
 * The daemon's configuration: one YAML file, validated before mount, overridable by `-o key=value`.
 * Every tunable lives here with its default, so `imapfs mount` with no config file is fully defined.
 * docs/configuration.md documents each key; keep the two in step.
 */
import { z } from 'zod';
import { parseSize } from './sizes';

export const CONFIG_VERSION = 1;

/** Accepts 4096, "64M", "1GiB". */
const size = (def: string) =>
  z
    .union([z.number(), z.string()])
    .default(def)
    .transform((v, ctx) => {
      try {
        return parseSize(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    });

const seconds = (def: number) => z.number().nonnegative().default(def);

export const ConfigSchema = z
  .object({
    version: z.literal(CONFIG_VERSION).default(CONFIG_VERSION),
    map: z
      .object({
        /** Double the map's side when it fills; off makes a full map answer ENOSPC. */
        grow: z.boolean().default(true),
        /** The largest side growth may reach (a power of two). */
        max_side: z
          .number()
          .int()
          .default(65536)
          .refine((n) => n >= 32 && (n & (n - 1)) === 0, 'must be a power of two ≥ 32'),
      })
      .strict()
      .prefault({}),
    cache: z
      .object({
        l1_bytes: size('64M'),
        l2_bytes: size('64M'),
        /**
         * Also deflate into L2 the clusters a sequential prefetch brought in and that were read at
         * most once (ZFS's l2arc_noprefetch=0). Off: a one-pass stream is not worth 50 µs per cluster
         * on the cache thread, and it would push the re-read working set out of L2.
         */
        l2_streamed: z.boolean().default(false),
        prefetch: z
          .object({
            enabled: z.boolean().default(true),
            window_clusters: z.number().int().min(1).max(4096).default(256),
            /**
             * After a cold read of a small file, read this many map clusters stored after it (the
             * files written with it); 0 turns neighbour prefetch off.
             */
            neighbour_clusters: z.number().int().min(0).max(4096).default(64),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    io: z
      .object({
        /** Writers block when this much data waits to be written (write-behind bound). */
        max_dirty_bytes: size('64M'),
        /**
         * Unit of write-behind: the size of each buffer a file's writes collect in before it is
         * flushed to the map as one run (and the CLI's default --chunk-size is the same 1M).
         */
        chunk_bytes: size('1M').refine(
          (n) => n % 4096 === 0 && n >= 64 * 1024 && n <= 64 * 1024 * 1024,
          'must be a multiple of 4K between 64K and 64M',
        ),
        /**
         * Most bytes a sequential reader is read ahead of, in 1 MiB read slots of the daemon's own
         * (src/fuse/read-ahead.ts); how much of it is used follows the reader's rate. 0 hands
         * sequential read-ahead to the cache actor's prefetch (cache.prefetch.window_clusters).
         */
        readahead_bytes: size('8M').refine(
          (n) => n === 0 || (n % (1 << 20) === 0 && n >= 2 << 20 && n <= 16 << 20),
          'must be 0 or a whole number of MiB between 2M and 16M',
        ),
      })
      .strict()
      .prefault({}),
    journal: z
      .object({
        /** Unsafe: only for measuring the journal's overhead. */
        enabled: z.boolean().default(true),
        group_commit_ms: z.number().nonnegative().max(1000).default(2),
        checkpoint_interval_s: seconds(30),
        checkpoint_bytes: size('64M'),
        /**
         * No heartbeat from the journal actor for this long = hung: it is killed and restarted (during
         * recovery too; the checksum scan beats as it goes, its other steps must fit in this).
         */
        hang_timeout_s: z.number().positive().max(3600).default(30),
      })
      .strict()
      .prefault({}),
    scheduler: z
      .object({
        /** Map I/O requests the scheduler executes at once (each holds ≈3 MiB of plan buffers). */
        max_inflight: z.number().int().min(1).max(256).default(4),
        /** Per priority class; a class at its limit lets lower classes run. */
        per_class_inflight: z
          .object({
            metadata: z.number().int().min(1).max(256).default(4),
            interactive: z.number().int().min(1).max(256).default(4),
            fsync: z.number().int().min(1).max(256).default(4),
            background: z.number().int().min(1).max(256).default(2),
          })
          .strict()
          .prefault({}),
        /** Per caller (FUSE pid), all classes together. */
        per_caller_inflight: z.number().int().min(1).max(256).default(3),
        queue_capacity: z.number().int().min(16).max(1_000_000).default(4096),
        /** Added to every map I/O: simulates a slow device for tests and benchmarks. */
        io_delay_ms: z.number().nonnegative().max(10_000).default(0),
      })
      .strict()
      .prefault({}),
    fuse: z
      .object({
        max_write: size('1M').refine((n) => n >= 4096 && n <= 1024 * 1024, 'must be between 4K and 1M'),
        writeback_cache: z.boolean().default(false),
        attr_timeout_s: seconds(1),
        entry_timeout_s: seconds(1),
        allow_other: z.boolean().default(false),
        default_permissions: z.boolean().default(false),
        acl: z.boolean().default(false),
        read_only: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /** host:port for Prometheus exposition; empty to disable. */
        listen: z.string().default(''),
      })
      .strict()
      .prefault({}),
    tracing: z
      .object({
        enabled: z.boolean().default(false),
        otlp_endpoint: z.string().default('http://127.0.0.1:4318'),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
        /** Default: beside the map, MAP.png.log. */
        file: z.string().default(''),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    // A FUSE write is copied into one write-behind buffer whole, and the bound needs two buffers.
    if (c.io.chunk_bytes < c.fuse.max_write) {
      ctx.addIssue({
        code: 'custom',
        path: ['io', 'chunk_bytes'],
        message: `must be at least fuse.max_write (${c.fuse.max_write})`,
      });
    }
    if (c.io.chunk_bytes * 2 > c.io.max_dirty_bytes) {
      ctx.addIssue({
        code: 'custom',
        path: ['io', 'chunk_bytes'],
        message: `must be at most half of io.max_dirty_bytes (${c.io.max_dirty_bytes})`,
      });
    }
  });

export type ConfigInput = z.input<typeof ConfigSchema>;
export type Config = z.output<typeof ConfigSchema>;
