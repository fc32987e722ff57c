/**
 * The JSON document a run produces, and the arithmetic over it: medians per target and the ratios
 * between targets. Ratios are what the regression detector compares, because on a shared, noisy
 * machine the absolute figures of two runs differ more than the ratios of one run do.
 */
import type { BenchSizes } from './config';
import type { MachineInfo } from './machine';
import { METRIC_IDS, METRICS, emptyValues, type MetricId, type MetricValues } from './metrics';

export interface TargetInfo {
  readonly name: string;
  readonly description: string;
  readonly available: boolean;
  readonly skipReason: string | null;
  readonly versions: Record<string, string>;
  readonly injectedDelayMs: number;
  /** How the delay was applied (inside the target, or emulated by the jobs); absent in old files. */
  readonly injectedHow?: string | null;
}

export interface RunRecord {
  readonly target: string;
  readonly repetition: number;
  readonly seconds: number;
  readonly values: MetricValues;
  readonly notes: string[];
}

export interface Ratio {
  /** `numerator/denominator:metric`, the key --compare matches on. */
  readonly key: string;
  readonly numerator: string;
  readonly denominator: string;
  readonly metric: MetricId;
  readonly value: number;
}

export interface BenchDocument {
  readonly schema: 1;
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly quick: boolean;
  readonly sizes: BenchSizes;
  readonly repetitions: number;
  /** The target the ratios are about (imapfs in a real run). */
  readonly subject: string;
  readonly machine: MachineInfo;
  /**
   * os.loadavg() (1, 5, 15 min) when the run started and ended, and the 1-minute figure before each
   * target's repetition: how busy the shared machine was. Absent in older files.
   */
  readonly loadAverage?: { readonly start: number[]; readonly end: number[]; readonly samples1m: number[] };
  readonly targets: TargetInfo[];
  readonly runs: RunRecord[];
  readonly medians: Record<string, MetricValues>;
  readonly ratios: Ratio[];
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function mediansOf(runs: readonly RunRecord[], target: string): MetricValues {
  const out = emptyValues();
  const mine = runs.filter((r) => r.target === target);
  for (const id of METRIC_IDS) {
    out[id] = median(mine.map((r) => r.values[id]).filter((x): x is number => x !== null));
  }
  return out;
}

/**
 * subject/each other target, then every other target/native. A ratio exists only where both medians
 * are positive numbers and the metric is comparable across targets.
 */
export function ratiosOf(
  medians: Record<string, MetricValues>,
  subject: string,
  reference = 'native',
): Ratio[] {
  const names = Object.keys(medians);
  const pairs: [string, string][] = [];
  if (names.includes(subject)) for (const n of names) if (n !== subject) pairs.push([subject, n]);
  if (names.includes(reference)) {
    for (const n of names) if (n !== reference && n !== subject) pairs.push([n, reference]);
  }
  const out: Ratio[] = [];
  for (const [num, den] of pairs) {
    for (const metric of METRIC_IDS) {
      if (!METRICS[metric].ratio) continue;
      const a = medians[num]?.[metric];
      const b = medians[den]?.[metric];
      if (a == null || b == null || !(a > 0) || !(b > 0)) continue;
      out.push({ key: `${num}/${den}:${metric}`, numerator: num, denominator: den, metric, value: a / b });
    }
  }
  return out;
}
