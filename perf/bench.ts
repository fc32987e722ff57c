/**
 * Runs `imapfs bench` from source, without a build: `npx tsx perf/bench.ts --quick --targets native,fuse2fs`.
 * Production uses `imapfs bench` (dist); this is for working on the suite itself.
 */
import { Command } from 'commander';
import { registerBench } from '../src/cli/commands/bench';

const program = new Command().name('imapfs').exitOverride();
registerBench(program);
program.parseAsync(['node', 'imapfs', 'bench', ...process.argv.slice(2)]).catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
