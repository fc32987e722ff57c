/**
 * The one clock for deadlines. Deadlines are absolute milliseconds on the monotonic clock so that
 * a wall-clock step (NTP, suspend) never makes a request look early or late.
 *
 * `performance.now()` has a different origin in every worker thread, so it cannot be compared across
 * threads; `process.hrtime` (CLOCK_MONOTONIC via libuv) is the same in every thread of the process.
 * We pay for one hrtime read per thread at load and use the cheap `performance.now()` afterwards.
 */
import { performance } from 'node:perf_hooks';

const originOffsetMs = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** Milliseconds on the process-wide monotonic clock; comparable between threads of one process. */
export function monotonicNow(): number {
  return performance.now() + originOffsetMs;
}
