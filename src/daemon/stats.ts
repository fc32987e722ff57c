/**
 * Live counters the daemon keeps for `imapfs stats`: per-op counts, errors and latency quantiles.
 * Latencies go into log-spaced buckets (about 10% wide), so recording is O(1) and memory is fixed.
 */
import type { ReadAheadCounters } from '../fuse/read-ahead';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';

const BUCKETS_PER_DOUBLING = 8;
const MIN_US = 1;
const BUCKET_COUNT = 8 * 32; // 1 µs … ~70 min

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKET_COUNT);
  count = 0;
  sumUs = 0;
  maxUs = 0;

  record(us: number): void {
    const v = Math.max(us, MIN_US);
    const idx = Math.min(BUCKET_COUNT - 1, Math.floor(Math.log2(v / MIN_US) * BUCKETS_PER_DOUBLING));
    this.counts[idx]!++;
    this.count++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** Upper edge of the bucket holding quantile q: an over-estimate by at most one bucket width. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    let seen = 0;
    const rank = q * this.count;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.maxUs, MIN_US * 2 ** ((i + 1) / BUCKETS_PER_DOUBLING));
    }
    return this.maxUs;
  }
}

export interface OpStats {
  count: number;
  /** Failures: every errno answer except the expected ones below. */
  errors: number;
  /** Expected negative answers: lookup ENOENT (a name that is not there), getxattr ENODATA. */
  negative: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

/**
 * Answers that are how an op says "no" rather than a failure: shells and `ls` look up names that do
 * not exist and read xattrs (security.capability, ACLs) that are not set all the time.
 */
function isExpectedNegative(op: string, errno: number): boolean {
  return (
    (op === 'lookup' && errno === osConstants.errno.ENOENT) ||
    (op === 'getxattr' && errno === osConstants.errno.ENODATA)
  );
}

export class OpCounters {
  private readonly ops = new Map<string, { hist: LatencyHistogram; errors: number; negative: number }>();
  private readonly errorsByCode = new Map<string, number>();

  record(op: string, startNs: bigint, errno: number, code?: string): void {
    let entry = this.ops.get(op);
    if (!entry) {
      entry = { hist: new LatencyHistogram(), errors: 0, negative: 0 };
      this.ops.set(op, entry);
    }
    entry.hist.record(Number(process.hrtime.bigint() - startNs) / 1000);
    if (errno !== 0 && isExpectedNegative(op, errno)) {
      entry.negative++;
    } else if (errno !== 0) {
      entry.errors++;
      if (code) this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
    }
  }

  snapshot(): { ops: Record<string, OpStats>; errorsByCode: Record<string, number> } {
    const ops: Record<string, OpStats> = {};
    for (const [op, { hist, errors, negative }] of this.ops) {
      ops[op] = {
        count: hist.count,
        errors,
        negative,
        p50Us: Math.round(hist.quantile(0.5)),
        p99Us: Math.round(hist.quantile(0.99)),
        meanUs: hist.count ? Math.round(hist.sumUs / hist.count) : 0,
      };
    }
    return { ops, errorsByCode: Object.fromEntries(this.errorsByCode) };
  }
}

export interface ActorStats {
  state: string;
  restarts: number;
  inFlight: number;
  queued?: number;
  missedDeadlines?: number;
}

export interface DaemonStats {
  map: string;
  mountpoint: string;
  pid: number;
  uptimeS: number;
  rssBytes: number;
  peakRssBytes: number;
  ops: Record<string, OpStats>;
  errorsByCode: Record<string, number>;
  actors: Record<string, ActorStats>;
  dirtyBytes: number;
  cache: { hitRatio: number | null; [k: string]: unknown };
  [k: string]: unknown;
}

export function formatStats(s: DaemonStats): string {
  const lines: string[] = [];
  lines.push(`${s.map} on ${s.mountpoint} (pid ${s.pid}, up ${s.uptimeS.toFixed(0)} s)`);
  lines.push(
    `memory: rss ${(s.rssBytes / 2 ** 20).toFixed(1)} MiB, peak ${(s.peakRssBytes / 2 ** 20).toFixed(1)} MiB, dirty ${(s.dirtyBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  lines.push(
    `cache: hit ratio ${s.cache.hitRatio === null ? 'n/a' : (s.cache.hitRatio * 100).toFixed(1) + '%'}`,
  );
  const pf = s.cache.prefetch as
    { issued: number; hits: number; neighbourIssued?: number; neighbourHits?: number } | undefined;
  if (pf) {
    lines.push(
      `prefetch: file ${pf.issued} clusters, ${pf.hits} hits; neighbour ${pf.neighbourIssued ?? 0} clusters, ${pf.neighbourHits ?? 0} hits`,
    );
  }
  const ra = s.readAhead as ReadAheadCounters | null | undefined;
  if (ra) {
    const mean = ra.loaded > 0 ? (ra.loadMs / ra.loaded).toFixed(1) : 'n/a';
    lines.push(
      `read-ahead: ${ra.windows} windows (mean load ${mean} ms, ${ra.dropped} dropped), ${ra.hits} reads served (${ra.waited} waited), ${(ra.advisedBytes / 2 ** 20).toFixed(0)} MiB advised`,
    );
  }
  const io = s.scheduler as
    { peakInFlight?: number; concurrency?: number; orderedWaits?: number } | undefined;
  if (io?.concurrency !== undefined) {
    lines.push(
      `scheduler: up to ${io.concurrency} requests at once, peak ${io.peakInFlight ?? 0}, ${io.orderedWaits ?? 0} waited for an earlier request on the same clusters`,
    );
  }
  lines.push('actors:');
  for (const [name, a] of Object.entries(s.actors)) {
    lines.push(
      `  ${name.padEnd(10)} ${a.state.padEnd(10)} restarts ${a.restarts}  in flight ${a.inFlight}${a.queued !== undefined ? `  queued ${a.queued}` : ''}`,
    );
  }
  lines.push('ops:            count   errors  no-such   p50 µs   p99 µs');
  for (const [op, o] of Object.entries(s.ops).sort()) {
    lines.push(
      `  ${op.padEnd(12)} ${String(o.count).padStart(7)} ${String(o.errors).padStart(8)} ${String(o.negative).padStart(8)} ${String(o.p50Us).padStart(8)} ${String(o.p99Us).padStart(8)}`,
    );
  }
  if (Object.keys(s.errorsByCode).length) {
    lines.push('errors by code:');
    for (const [code, n] of Object.entries(s.errorsByCode)) lines.push(`  ${code} ${n}`);
  }
  return `${lines.join('\n')}\n`;
}

/** VmRSS and VmHWM of this process, from the kernel's own accounting. */
export function processMemory(): { rssBytes: number; peakRssBytes: number } {
  const text = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}
