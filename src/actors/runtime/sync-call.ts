/**
 * A blocking call from a worker to the main thread, for the rare moment an actor cannot go on without
 * another actor's answer inside its own synchronous code: the journal's allocator, mid-transaction,
 * needs the map to grow (which only the scheduler may do). The worker blocks on Atomics.wait; the
 * main thread watches with Atomics.waitAsync, forwards the call, and wakes it with the answer.
 *
 *   word STATE: IDLE ─worker posts─▶ CALLING ─main answers─▶ ANSWERED | FAILED ─worker reads─▶ IDLE
 *
 * Ownership: ARGS are written by the worker while IDLE; RESULT by the main thread while CALLING.
 */
const STATE = 0;
const IDLE = 0;
const CALLING = 1;
const ANSWERED = 2;
const FAILED = 3;
const ARGS = 1;
const RESULT = 5;
const WORDS = 9;

type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
) => { async: boolean; value: Promise<'ok' | 'timed-out'> | 'not-equal' | 'timed-out' };
// Atomics.waitAsync is in Node 20 (V8 11) but not yet in TypeScript's ES2023 lib.
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export function createSyncCallBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(WORDS * 4);
}

/**
 * Worker side: blocks until the main thread answers; numbers in, numbers out (Float64 precision not
 * needed). `whileWaiting` runs every `sliceMs` of the wait: a blocked worker's event loop cannot beat
 * its heartbeat, and the answer (e.g. a map growth, which copies the file) may take longer than the
 * supervisor's hang timeout.
 */
export function syncCall(
  buffer: SharedArrayBuffer,
  args: readonly number[],
  timeoutMs: number,
  whileWaiting?: { sliceMs: number; tick: () => void },
): number[] | null {
  const words = new Int32Array(buffer);
  for (let i = 0; i < 4; i++) words[ARGS + i] = args[i] ?? 0;
  Atomics.store(words, STATE, CALLING);
  Atomics.notify(words, STATE);
  const deadline = Date.now() + timeoutMs;
  let outcome: 'ok' | 'not-equal' | 'timed-out' = 'timed-out';
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    outcome = Atomics.wait(words, STATE, CALLING, whileWaiting ? Math.min(left, whileWaiting.sliceMs) : left);
    if (outcome !== 'timed-out') break;
    whileWaiting?.tick();
  }
  const state = Atomics.load(words, STATE);
  Atomics.store(words, STATE, IDLE);
  if (state !== ANSWERED) return null;
  return [words[RESULT]!, words[RESULT + 1]!, words[RESULT + 2]!, words[RESULT + 3]!];
}

/**
 * Main side: serves calls until `stop()`. The handler's result (up to 4 int32s) or null (refused)
 * goes back to the blocked worker.
 */
export function serveSyncCalls(
  buffer: SharedArrayBuffer,
  handler: (args: number[]) => Promise<number[] | null>,
  onError: (err: unknown) => void,
): { stop(): void } {
  const words = new Int32Array(buffer);
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      if (Atomics.load(words, STATE) !== CALLING) {
        const w = waitAsync(words, STATE, Atomics.load(words, STATE));
        if (w.async) await w.value;
        continue;
      }
      const args = [words[ARGS]!, words[ARGS + 1]!, words[ARGS + 2]!, words[ARGS + 3]!];
      let result: number[] | null = null;
      try {
        result = await handler(args);
      } catch (err) {
        onError(err);
      }
      if (result) for (let i = 0; i < 4; i++) words[RESULT + i] = result[i] ?? 0;
      Atomics.store(words, STATE, result ? ANSWERED : FAILED);
      Atomics.notify(words, STATE);
      // Wait for the worker to take the answer before looking for the next call.
      while (running && Atomics.load(words, STATE) !== IDLE) {
        const w = waitAsync(words, STATE, Atomics.load(words, STATE));
        if (w.async) await Promise.race([w.value, new Promise((r) => setTimeout(r, 50))]);
      }
    }
  };
  void loop();
  return {
    stop() {
      running = false;
      Atomics.notify(words, STATE);
    },
  };
}
