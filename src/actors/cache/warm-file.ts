/**
 * The warm file, MAP.png.cachewarm: the hottest clusters at the last clean stop, as file runs
 * (ino, first file cluster, count), hottest first. JSON, written atomically (temp file + rename).
 * It holds hints only: the next mount plans and reads them through the journal and the scheduler
 * (CRCs checked), so a stale or foreign list can cost I/O but never serve wrong bytes.
 */
import * as fs from 'node:fs';
import type { WarmRun } from '../../protocol/cache';

const FORMAT = 'imapfs-cachewarm';
const VERSION = 1;
/** Refuse absurd files rather than spend memory on them. */
const MAX_RUNS = 1_000_000;

export function writeWarmFile(path: string, runs: readonly WarmRun[]): void {
  const doc = {
    format: FORMAT,
    version: VERSION,
    savedAt: new Date().toISOString(),
    runs: runs.map((r) => [r.ino, r.fileCluster, r.count]),
  };
  const tmp = `${path}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(doc));
  fs.renameSync(tmp, path);
}

/** The recorded runs, or [] when the file is missing or not a warm file of this version. */
export function readWarmFile(path: string): WarmRun[] {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
  if (typeof doc !== 'object' || doc === null) return [];
  const d = doc as { format?: unknown; version?: unknown; runs?: unknown };
  if (d.format !== FORMAT || d.version !== VERSION || !Array.isArray(d.runs)) return [];
  const out: WarmRun[] = [];
  for (const r of d.runs.slice(0, MAX_RUNS)) {
    if (!Array.isArray(r) || r.length !== 3) continue;
    const [ino, fileCluster, count] = r as unknown[];
    if (![ino, fileCluster, count].every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) continue;
    if ((count as number) < 1) continue;
    out.push({ ino: ino as number, fileCluster: fileCluster as number, count: count as number });
  }
  return out;
}
