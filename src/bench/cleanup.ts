/**
 * Teardown that runs however the run ends: normal return, exception, SIGINT or SIGTERM. Targets
 * register an undo step as soon as they create something (a temp dir, a mount, a daemon), so an
 * interruption in the middle of setup still leaves nothing behind.
 *
 * Undo steps run in reverse order of registration (unmount before removing the mount point).
 */
type Undo = () => Promise<void>;

const stack: { name: string; undo: Undo }[] = [];
let signalsInstalled = false;

export function onCleanup(name: string, undo: Undo): () => void {
  const entry = { name, undo };
  stack.push(entry);
  installSignalHandlers();
  return () => {
    const i = stack.indexOf(entry);
    if (i >= 0) stack.splice(i, 1);
  };
}

/** Runs and forgets every registered undo step; failures are reported, not thrown, so all run. */
export async function runCleanups(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)) {
  while (stack.length > 0) {
    const entry = stack.pop();
    if (!entry) break;
    try {
      await entry.undo();
    } catch (err) {
      log(`bench: cleanup "${entry.name}" failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** A cleanup step can wait on a busy mount; the interrupted run must still end. */
const SIGNAL_CLEANUP_LIMIT_MS = 60_000;

function installSignalHandlers(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  let interrupted = false;
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(signal, () => {
      if (interrupted) {
        process.stderr.write(`\nbench: second ${signal}, exiting without waiting for cleanup\n`);
        process.exit(code);
      }
      interrupted = true;
      process.stderr.write(`\nbench: ${signal}, unmounting and removing images…\n`);
      const limit = setTimeout(() => {
        process.stderr.write(
          `bench: cleanup still running after ${SIGNAL_CLEANUP_LIMIT_MS / 1000} s; exiting\n`,
        );
        process.exit(code);
      }, SIGNAL_CLEANUP_LIMIT_MS);
      limit.unref();
      void runCleanups().finally(() => process.exit(code));
    });
  }
}
