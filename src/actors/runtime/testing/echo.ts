/**
 * The echo actor's protocol and spec, importable from the main thread without loading the worker.
 */
import path from 'node:path';
import type { ErrorCode } from '../../../protocol/errors';
import type { SlotRef } from '../../../protocol/envelope';
import type { ActorSpec } from '../handle';

export interface EchoOptions {
  /** init throws: the worker never becomes ready (restart-loop tests). */
  readonly failInit?: boolean;
  readonly logDrain?: boolean;
}

export interface EchoOps {
  echo: {
    payload: { text: string };
    result: { text: string; attempt: number; trace: string; served: number };
  };
  sleep: { payload: { ms: number }; result: { slept: number } };
  fail: { payload: { code: ErrorCode }; result: never };
  fillSlot: { payload: { ref: SlotRef; seed: number }; result: { sha256: string } };
  hashSlot: { payload: { ref: SlotRef }; result: { sha256: string } };
  copySlot: { payload: { from: SlotRef; to: SlotRef }; result: { copied: number } };
  /** Allocates and frees slots of slab `slab` in a loop, stamping each with `marker` while held; counts clashes. */
  churnSlots: {
    payload: { slab: number; iterations: number; hold: number; marker: number };
    result: { clashes: number };
  };
  /** Reports degraded (or ready again) to the supervisor. */
  setHealth: { payload: { degraded: boolean; reason?: string }; result: null };
}

export const ECHO_MODULE = path.join(__dirname, 'echo.worker');

export function echoSpec(overrides: Partial<ActorSpec> = {}): ActorSpec {
  return { name: 'echo', module: ECHO_MODULE, ...overrides };
}
