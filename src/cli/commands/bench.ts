/**
 * `imapfs bench`: the perf/ suite (see docs/benchmarks/README.md). The work is in src/bench; this
 * file only turns options into a run or a comparison.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { compareDocuments, DEFAULT_THRESHOLD, formatComparison } from '../../bench/compare';
import { resolveSizes } from '../../bench/config';
import { defaultJsonPath, readDocument, REPO_ROOT, writeOutputs } from '../../bench/output';
import { runBench } from '../../bench/runner';
import { TARGETS } from '../../bench/targets';

interface BenchOptions {
  quick?: boolean;
  json?: string;
  against: string;
  targets?: string;
  subject: string;
  compare?: string[];
  threshold: string;
  reps: string;
  workdir: string;
  markdown: string | false;
  injectDelayMs: string;
  injectInto?: string;
}

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('run the benchmark suite against imapfs and reference filesystems, or compare two results')
    .option('--quick', '256 MiB files, 2,000 files, short timed jobs (under 5 minutes)')
    .option('--json <file>', 'where to write the result document (default perf/results/bench-<time>.json)')
    .option('--against <targets>', 'reference targets', 'native,fuse2fs,null')
    .option(
      '--targets <targets>',
      `every target to run, in order (known: ${Object.keys(TARGETS).join(', ')})`,
    )
    .option('--subject <target>', 'the target the ratios are about', 'imapfs')
    .option('--reps <n>', 'repetitions per target (median taken)', '3')
    .option('--workdir <dir>', 'where images, maps and native files go', tmpdir())
    .option(
      '--markdown <file>',
      'Markdown report (chart beside it)',
      resolve(REPO_ROOT, 'docs', 'benchmarks', 'latest.md'),
    )
    .option('--no-markdown', 'write only the JSON document')
    .option('--inject-delay-ms <ms>', 'add this delay before every I/O of one target (proves --compare)', '0')
    .option('--inject-into <target>', 'the target that gets the injected delay (default: the subject)')
    .option(
      '--compare <files...>',
      'compare OLD.json NEW.json; exit 1 if a ratio got worse by more than the threshold',
    )
    .option('--threshold <fraction>', 'regression threshold for --compare', String(DEFAULT_THRESHOLD))
    .action(async (opts: BenchOptions) => {
      if (opts.compare) {
        process.exitCode = compareFiles(opts.compare, Number(opts.threshold));
        return;
      }
      const reps = Number(opts.reps);
      if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps must be a positive integer');
      const targets = opts.targets ? list(opts.targets) : [opts.subject, ...list(opts.against)];
      const log = (line: string) => process.stderr.write(`${line}\n`);
      if (reps < 3) log(`bench: ${reps} repetition(s); medians need at least 3 to mean much`);
      const doc = await runBench({
        targets: [...new Set(targets)],
        subject: opts.subject,
        repetitions: reps,
        quick: Boolean(opts.quick),
        sizes: resolveSizes(Boolean(opts.quick)),
        workdir: resolve(opts.workdir),
        repoRoot: REPO_ROOT,
        injectDelayMs: Number(opts.injectDelayMs),
        injectInto: opts.injectInto ?? opts.subject,
        log,
      });
      const written = writeOutputs(
        doc,
        resolve(opts.json ?? defaultJsonPath()),
        opts.markdown === false ? null : resolve(opts.markdown),
      );
      log(`bench: done in ${(doc.durationSeconds / 60).toFixed(1)} min`);
      for (const [what, path] of Object.entries(written)) if (path) log(`bench: ${what} → ${path}`);
    });
}

function compareFiles(files: string[], threshold: number): number {
  if (files.length !== 2) throw new Error('--compare takes two files: OLD.json NEW.json');
  const [oldPath, newPath] = files as [string, string];
  const c = compareDocuments(readDocument(oldPath), readDocument(newPath), threshold);
  process.stdout.write(formatComparison(c));
  return c.regressions.length > 0 ? 1 : 0;
}
