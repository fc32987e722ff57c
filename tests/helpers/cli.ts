/**
 * Runs the real `imapfs` CLI in a child process. We run the TypeScript sources through tsx
 * (`node --require tsx/cjs src/cli/main.ts`) rather than `npm run build` + `node bin/imapfs`: the
 * test then checks exactly the code under review without a build step, and the process boundary
 * (exit codes, stdout/stderr, signals) is the same as for the installed command.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const REPO = join(__dirname, '..', '..');
const TSX = require.resolve('tsx/cjs', { paths: [REPO] });
const MAIN = join(REPO, 'src', 'cli', 'main.ts');

/** The command line that runs the CLI, for tests that build shell pipelines. */
export const IMAPFS_ARGV: readonly string[] = [process.execPath, '--require', TSX, MAIN];

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Parsed stdout when it is one JSON document. */
  json: Record<string, unknown> | null;
}

export function imapfs(args: string[], options: { cwd?: string; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, ['--require', TSX, MAIN, ...args], {
    cwd: options.cwd,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    json = null;
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

/** Starts the CLI without waiting (for crash tests). */
export function imapfsAsync(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--require', TSX, MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

export function pngcheck(path: string): { ok: boolean; output: string } {
  const r = spawnSync('pngcheck', ['-v', path], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

export function errorCode(r: CliResult): unknown {
  return (r.json?.error as { code?: string } | undefined)?.code;
}
