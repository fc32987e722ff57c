/** A byte progress bar on a TTY (stderr), nothing otherwise, so scripts and --json stay clean. */
import { SingleBar } from 'cli-progress';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

export function byteProgress(label: string, total: number, enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY || total <= 0)
    return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% | {value}/{total} MiB`,
    stream: process.stderr,
    hideCursor: true,
  });
  const mib = (n: number): number => Math.round(n / 2 ** 20);
  bar.start(mib(total), 0);
  return { update: (done) => bar.update(mib(done)), stop: () => bar.stop() };
}
