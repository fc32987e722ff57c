/** What the run ran on: enough to tell two result files apart and to reproduce a figure. */
import { readFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { probe } from './proc';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryMiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly fio: string | null;
  readonly fuse: string | null;
  readonly gitCommit: string | null;
  readonly gitDirty: boolean | null;
  readonly versions: Record<string, string>;
}

export function machineInfo(repoRoot: string, extra: Record<string, string> = {}): MachineInfo {
  const status = probe('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no']);
  return {
    cpuModel: cpus()[0]?.model ?? readCpuModel(),
    cores: cpus().length,
    memoryMiB: Math.round(totalmem() / 1024 / 1024),
    kernel: release(),
    node: process.version,
    fio: probe('fio', ['--version']),
    fuse: probe('fusermount3', ['--version']),
    gitCommit: probe('git', ['-C', repoRoot, 'rev-parse', 'HEAD']),
    gitDirty: status === null ? null : status.length > 0,
    versions: extra,
  };
}

function readCpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
