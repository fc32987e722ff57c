/**
 * The metrics the suite reports. Each metric says which way is better, because the regression
 * detector compares ratios and must know whether a ratio going down is a loss (throughput) or a gain
 * (latency, memory).
 */

export type Direction = 'higher' | 'lower';

export interface MetricSpec {
  readonly id: MetricId;
  readonly label: string;
  readonly unit: string;
  readonly better: Direction;
  /**
   * Whether a ratio between two targets means something. A cache hit ratio is a property of one
   * target (only imapfs reports it), so it is shown but never divided.
   */
  readonly ratio: boolean;
}

export const METRIC_IDS = [
  'seqWriteMBps',
  'seqReadMBps',
  'randReadIops',
  'randReadP50Us',
  'randReadP99Us',
  'randWriteIops',
  'randWriteP50Us',
  'randWriteP99Us',
  'mixedReadIops',
  'mixedWriteIops',
  'mixedP99Us',
  'metaCreateOps',
  'metaStatOps',
  'metaRenameOps',
  'metaUnlinkOps',
  'cacheReadMBps',
  'cacheHitRatio',
  'peakRssMiB',
] as const;

export type MetricId = (typeof METRIC_IDS)[number];

/** One repetition's figures; null where the target cannot report the metric (e.g. RSS of native). */
export type MetricValues = Record<MetricId, number | null>;

export const METRICS: Record<MetricId, MetricSpec> = {
  seqWriteMBps: m('seqWriteMBps', 'sequential write 1 MiB', 'MB/s', 'higher'),
  seqReadMBps: m('seqReadMBps', 'sequential read 1 MiB', 'MB/s', 'higher'),
  randReadIops: m('randReadIops', 'random read 4 KiB', 'IOPS', 'higher'),
  randReadP50Us: m('randReadP50Us', 'random read 4 KiB p50', 'µs', 'lower'),
  randReadP99Us: m('randReadP99Us', 'random read 4 KiB p99', 'µs', 'lower'),
  randWriteIops: m('randWriteIops', 'random write 4 KiB', 'IOPS', 'higher'),
  randWriteP50Us: m('randWriteP50Us', 'random write 4 KiB p50', 'µs', 'lower'),
  randWriteP99Us: m('randWriteP99Us', 'random write 4 KiB p99', 'µs', 'lower'),
  mixedReadIops: m('mixedReadIops', 'mixed 70/30 x4, reads', 'IOPS', 'higher'),
  mixedWriteIops: m('mixedWriteIops', 'mixed 70/30 x4, writes', 'IOPS', 'higher'),
  mixedP99Us: m('mixedP99Us', 'mixed 70/30 x4, read p99', 'µs', 'lower'),
  metaCreateOps: m('metaCreateOps', 'metadata create', 'ops/s', 'higher'),
  metaStatOps: m('metaStatOps', 'metadata stat', 'ops/s', 'higher'),
  metaRenameOps: m('metaRenameOps', 'metadata rename', 'ops/s', 'higher'),
  metaUnlinkOps: m('metaUnlinkOps', 'metadata unlink', 'ops/s', 'higher'),
  cacheReadMBps: m('cacheReadMBps', 'working-set re-read', 'MB/s', 'higher'),
  cacheHitRatio: { ...m('cacheHitRatio', 'daemon cache hit ratio', '', 'higher'), ratio: false },
  peakRssMiB: m('peakRssMiB', 'daemon peak RSS, sequential', 'MiB', 'lower'),
};

function m(id: MetricId, label: string, unit: string, better: Direction): MetricSpec {
  return { id, label, unit, better, ratio: true };
}

export function emptyValues(): MetricValues {
  const v = {} as MetricValues;
  for (const id of METRIC_IDS) v[id] = null;
  return v;
}
