/**
 * Regression detection between two result documents. Only ratios are compared (see document.ts),
 * and direction matters: a throughput ratio that falls is a loss, a latency or memory ratio that
 * rises is a loss. A change counts as a regression when it is worse by more than the threshold.
 */
import type { BenchDocument, Ratio } from './document';
import { METRICS } from './metrics';

export const DEFAULT_THRESHOLD = 0.15;

export interface RatioChange {
  readonly key: string;
  readonly label: string;
  readonly old: number | null;
  readonly new: number | null;
  /** Relative change in the "better" direction: -0.2 means 20% worse; null if one side is missing. */
  readonly gain: number | null;
  readonly status: 'ok' | 'better' | 'regressed' | 'missing' | 'new';
}

export interface Comparison {
  readonly threshold: number;
  readonly changes: RatioChange[];
  readonly regressions: RatioChange[];
}

export function compareDocuments(
  oldDoc: Pick<BenchDocument, 'ratios'>,
  newDoc: Pick<BenchDocument, 'ratios'>,
  threshold = DEFAULT_THRESHOLD,
): Comparison {
  const olds = byKey(oldDoc.ratios);
  const news = byKey(newDoc.ratios);
  const keys = [...new Set([...olds.keys(), ...news.keys()])];
  const changes: RatioChange[] = keys.map((key) => {
    const o = olds.get(key);
    const n = news.get(key);
    const r = (o ?? n) as Ratio;
    const label = `${r.numerator}/${r.denominator} ${METRICS[r.metric]?.label ?? r.metric}`;
    if (!o || !n)
      return {
        key,
        label,
        old: o?.value ?? null,
        new: n?.value ?? null,
        gain: null,
        status: o ? 'missing' : 'new',
      };
    const better = METRICS[r.metric]?.better ?? 'higher';
    // For "lower is better", old/new - 1 is the gain; it is symmetric with new/old - 1 for throughput.
    const gain = better === 'higher' ? n.value / o.value - 1 : o.value / n.value - 1;
    const status = gain < -threshold ? 'regressed' : gain > threshold ? 'better' : 'ok';
    return { key, label, old: o.value, new: n.value, gain, status };
  });
  return { threshold, changes, regressions: changes.filter((c) => c.status === 'regressed') };
}

function byKey(ratios: readonly Ratio[]): Map<string, Ratio> {
  return new Map(ratios.map((r) => [r.key, r]));
}

/** A plain-text table for the terminal, regressions first. */
export function formatComparison(c: Comparison): string {
  const order = { regressed: 0, missing: 1, better: 2, new: 3, ok: 4 } as const;
  const rows = [...c.changes].sort((a, b) => order[a.status] - order[b.status] || a.key.localeCompare(b.key));
  const fmt = (x: number | null) => (x === null ? '—' : x.toFixed(3));
  const table = [
    ['status', 'ratio', 'old', 'new', 'change'],
    ...rows.map((r) => [
      r.status === 'regressed' ? 'REGRESSED' : r.status,
      r.label,
      fmt(r.old),
      fmt(r.new),
      r.gain === null ? '' : `${r.gain >= 0 ? '+' : ''}${(r.gain * 100).toFixed(1)}%`,
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  const verdict =
    c.regressions.length === 0
      ? `no ratio got more than ${c.threshold * 100}% worse`
      : `${c.regressions.length} ratio(s) got more than ${c.threshold * 100}% worse`;
  return `${lines.join('\n')}\n\n${verdict}\n`;
}
