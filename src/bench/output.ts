/** Writing a run's three artefacts: the JSON document, the Markdown page and the ratio chart. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { renderRatioChart } from './chart';
import type { BenchDocument } from './document';
import { renderMarkdown } from './markdown';

/** The repository root, from src/bench (tests, tsx) or dist/bench (production) alike. */
export const REPO_ROOT = resolve(__dirname, '..', '..');

export function defaultJsonPath(now = new Date()): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  return join(REPO_ROOT, 'perf', 'results', `bench-${stamp}.json`);
}

export interface Written {
  readonly json: string;
  readonly markdown: string | null;
  readonly chart: string | null;
}

/** The chart lives beside the Markdown (latest.md → latest-ratios.png) so the link is relative. */
export function writeOutputs(doc: BenchDocument, jsonPath: string, markdownPath: string | null): Written {
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(doc, null, 2)}\n`);
  if (markdownPath === null) return { json: jsonPath, markdown: null, chart: null };
  mkdirSync(dirname(markdownPath), { recursive: true });
  const chartName = `${basename(markdownPath).replace(/\.md$/, '')}-ratios.png`;
  const chartPath = join(dirname(markdownPath), chartName);
  const title = `IMAPFS BENCH RATIOS ${doc.startedAt.slice(0, 10)}${doc.quick ? ' (QUICK)' : ''}`;
  writeFileSync(chartPath, renderRatioChart(doc.ratios, title));
  writeFileSync(markdownPath, renderMarkdown(doc, chartName));
  return { json: jsonPath, markdown: markdownPath, chart: chartPath };
}

export function readDocument(path: string): BenchDocument {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as Partial<BenchDocument>;
  if (doc.schema !== 1 || !Array.isArray(doc.ratios)) {
    throw new Error(`${path} is not an imapfs bench result (schema 1 with ratios)`);
  }
  return doc as BenchDocument;
}
