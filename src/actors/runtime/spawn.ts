/**
 * The one place that starts an actor's worker thread (DESIGN.md §9).
 *
 * Production runs compiled JavaScript: `dist/**\/X.worker.js`. Tests and development run the
 * TypeScript source through tsx: `X.worker.ts` with `--require tsx/cjs`. Which tree we are in is
 * decided by this very file: if it is `spawn.ts`, we are running from source, and so are the actors.
 */
import { Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';
import { existsSync } from 'node:fs';

export const RUNNING_FROM_SOURCE = __filename.endsWith('.ts');

/**
 * The worker file for a module path given without extension, e.g.
 * `path.join(__dirname, 'journal.worker')` → `…/journal.worker.ts` or `…/journal.worker.js`.
 */
export function workerFileFor(modulePath: string): string {
  const withoutExtension = modulePath.replace(/\.(ts|js)$/, '');
  return `${withoutExtension}${RUNNING_FROM_SOURCE ? '.ts' : '.js'}`;
}

export interface SpawnOptions {
  /** Thread name shown in stack traces and diagnostics. */
  readonly name: string;
  readonly workerData: unknown;
  readonly transferList?: readonly TransferListItem[];
  readonly resourceLimits?: ResourceLimits;
}

export function spawnActorWorker(modulePath: string, options: SpawnOptions): Worker {
  const file = workerFileFor(modulePath);
  if (!existsSync(file)) throw new Error(`actor worker module not found: ${file}`);
  return new Worker(file, {
    name: options.name,
    workerData: options.workerData,
    transferList: options.transferList ? [...options.transferList] : [],
    // Resolved to an absolute path so the worker finds tsx whatever the daemon's cwd is.
    execArgv: RUNNING_FROM_SOURCE ? ['--require', require.resolve('tsx/cjs')] : [],
    ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}),
    // Worker output goes to the daemon's own stdout/stderr (and so to its log), not to a pipe we must drain.
    stdout: false,
    stderr: false,
  });
}
