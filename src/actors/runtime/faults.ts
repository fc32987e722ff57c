/**
 * Fault injection, shared by the worker host (which applies faults), the supervisor (which forwards
 * them) and the CLI (`imapfs debug fault MOUNTPOINT ACTOR crash|crash-after|hang|delay|error ...`). It is part of
 * the runtime, not a test hack, so that recovery is exercised on the real daemon.
 *
 *   crash   the worker dies from an uncaught exception while handling the message
 *   crash-after  the message is handled, then the worker dies before its reply leaves (the caller
 *           cannot tell whether it was applied: what a real crash mid-request looks like)
 *   hang    the worker thread blocks for good (no replies, no heartbeat) until the supervisor kills it
 *   delay   the message is handled `delayMs` later (a slow device, a slow actor)
 *   error   the message is answered with the errno `errno` without being handled
 *
 * Scope: the next `count` matching messages, or each matching message with `probability`, or both
 * (each match fires with probability p until it has fired K times); with neither, every matching
 * message until cleared. `ops` restricts matching to the named ops.
 *
 * Ownership: a FaultInjector lives in the actor's worker and dies with it; the supervisor may re-apply
 * a fault at respawn (`ActorSpec.fault`), e.g. to test restart-loop protection. The `count` of such a
 * spawn fault is one budget shared by every worker of the handle (a SharedArrayBuffer word), so
 * `count: 1` fires once in all, not once per worker: a crash that kills the worker cannot record that
 * it fired anywhere else, and a per-worker count would make the retry on the new worker crash again.
 */
import { constants as osConstants } from 'node:os';
import { ImapError } from '../../protocol/errors';
import { errorCodeForErrno } from '../../protocol/envelope';

export const FAULT_MODES = ['crash', 'crash-after', 'hang', 'delay', 'error'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

export interface FaultSpec {
  readonly mode: FaultMode;
  /** `delay`: milliseconds added before the handler runs. */
  readonly delayMs?: number;
  /** `error`: the positive errno to answer with (must be in the error table, e.g. EIO, ENOSPC). */
  readonly errno?: number;
  /** Fire for this many matching messages, then clear. */
  readonly count?: number;
  /** Fire for each matching message with this probability (0 < p ≤ 1). */
  readonly probability?: number;
  /** Only these ops match; absent means every op. */
  readonly ops?: readonly string[];
}

/** What the host does with one message. */
export type FaultDecision =
  | { readonly mode: 'crash' }
  | { readonly mode: 'crash-after' }
  | { readonly mode: 'hang' }
  | { readonly mode: 'delay'; readonly delayMs: number }
  | { readonly mode: 'error'; readonly error: ImapError };

function invalid(detail: string): ImapError {
  return new ImapError('IMAP_E_INVALID', `fault: ${detail}`);
}

/** Accepts `EIO`, `eio` or `5`; the errno must have a code in the error table. */
export function parseErrno(text: string): number {
  const trimmed = text.trim();
  const errno = /^\d+$/.test(trimmed)
    ? Number(trimmed)
    : (osConstants.errno as Record<string, number | undefined>)[trimmed.toUpperCase()];
  if (errno === undefined || !errorCodeForErrno(errno)) {
    throw invalid(`unknown errno ${JSON.stringify(text)}; use a name such as EIO, ENOSPC, ENOENT or EAGAIN`);
  }
  return errno;
}

/** Checks a spec from an untrusted source (CLI, control socket, another thread). */
export function validateFaultSpec(input: unknown): FaultSpec {
  if (typeof input !== 'object' || input === null) throw invalid('spec must be an object');
  const spec = input as Record<string, unknown>;
  const mode = spec['mode'];
  if (typeof mode !== 'string' || !(FAULT_MODES as readonly string[]).includes(mode)) {
    throw invalid(`mode must be one of ${FAULT_MODES.join(', ')}`);
  }
  const result: { -readonly [K in keyof FaultSpec]: FaultSpec[K] } = { mode: mode as FaultMode };
  const { delayMs, errno, count, probability, ops } = spec;
  if (mode === 'delay') {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
      throw invalid('delay needs --ms N with N ≥ 0');
    }
    result.delayMs = delayMs;
  }
  if (mode === 'error') {
    if (typeof errno !== 'number' || !errorCodeForErrno(errno)) throw invalid('error needs --errno E');
    result.errno = errno;
  }
  if (count !== undefined) {
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1)
      throw invalid('--count must be ≥ 1');
    result.count = count;
  }
  if (probability !== undefined) {
    if (typeof probability !== 'number' || !(probability > 0 && probability <= 1)) {
      throw invalid('--probability must be in (0, 1]');
    }
    result.probability = probability;
  }
  if (ops !== undefined) {
    if (!Array.isArray(ops) || ops.length === 0 || !ops.every((op) => typeof op === 'string')) {
      throw invalid('ops must be a non-empty list of op names');
    }
    result.ops = [...(ops as string[])];
  }
  return result;
}

export type FaultCommand =
  | { readonly kind: 'set'; readonly actor: string; readonly spec: FaultSpec }
  | { readonly kind: 'clear'; readonly actor: string | undefined };

/**
 * Parses the words after MOUNTPOINT of `imapfs debug fault`:
 *   ACTOR crash|crash-after|hang|delay|error [--ms N] [--errno E] [--count K] [--probability P] [--op OP]...
 *   [ACTOR] --clear
 */
export function parseFaultCommand(words: readonly string[]): FaultCommand {
  const positional: string[] = [];
  const options = new Map<string, string[]>();
  let clear = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    if (word === '--clear') {
      clear = true;
    } else if (word.startsWith('--')) {
      const [name, inline] = word.slice(2).split('=', 2) as [string, string | undefined];
      const value = inline ?? words[++i];
      if (value === undefined) throw invalid(`--${name} needs a value`);
      options.set(name, [...(options.get(name) ?? []), value]);
    } else {
      positional.push(word);
    }
  }
  if (clear) {
    if (positional.length > 1 || options.size > 0) throw invalid('--clear takes at most an actor name');
    return { kind: 'clear', actor: positional[0] };
  }
  const [actor, mode, ...extra] = positional;
  if (!actor || !mode || extra.length > 0)
    throw invalid('usage: ACTOR crash|crash-after|hang|delay|error [options]');
  const known = new Set(['ms', 'errno', 'count', 'probability', 'op']);
  for (const name of options.keys()) if (!known.has(name)) throw invalid(`unknown option --${name}`);
  const single = (name: string): string | undefined => options.get(name)?.at(-1);
  const number = (name: string): number | undefined => {
    const text = single(name);
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isFinite(value)) throw invalid(`--${name} must be a number, not ${JSON.stringify(text)}`);
    return value;
  };
  const errnoText = single('errno');
  const spec = validateFaultSpec({
    mode,
    delayMs: number('ms'),
    errno: errnoText === undefined ? undefined : parseErrno(errnoText),
    count: number('count'),
    probability: number('probability'),
    ops: options.get('op'),
  });
  return { kind: 'set', actor, spec };
}

export function describeFault(spec: FaultSpec): string {
  const parts: string[] = [spec.mode];
  if (spec.delayMs !== undefined) parts.push(`${spec.delayMs} ms`);
  if (spec.errno !== undefined) parts.push(`errno ${spec.errno}`);
  if (spec.count !== undefined) parts.push(`next ${spec.count}`);
  if (spec.probability !== undefined) parts.push(`p=${spec.probability}`);
  if (spec.ops) parts.push(`ops ${spec.ops.join(',')}`);
  return parts.join(', ');
}

export interface FaultStats {
  readonly active: FaultSpec | undefined;
  /** Times a fault fired since the worker started. */
  readonly injected: number;
}

/** The per-worker fault state; the host asks it once per data message. */
export class FaultInjector {
  private spec: FaultSpec | undefined;
  private remaining = Infinity;
  private injected = 0;

  constructor(private readonly random: () => number = Math.random) {}

  /** Word 0 of a budget shared across workers (spawn faults with a count); see the file comment. */
  private shared: Int32Array | undefined;

  /**
   * Arms `spec`. With `sharedBudget` (word 0 = firings left, shared by every worker of one handle),
   * the count is taken from it instead of this worker's own counter.
   */
  set(spec: FaultSpec, sharedBudget?: Int32Array): void {
    this.spec = validateFaultSpec(spec);
    this.remaining = spec.count ?? Infinity;
    this.shared = spec.count !== undefined ? sharedBudget : undefined;
    // Spent by the workers before this one: nothing left to fire.
    if (this.shared && Atomics.load(this.shared, 0) <= 0) this.spec = undefined;
  }

  clear(): void {
    this.spec = undefined;
    this.shared = undefined;
  }

  stats(): FaultStats {
    return { active: this.spec, injected: this.injected };
  }

  decide(op: string): FaultDecision | undefined {
    const spec = this.spec;
    if (!spec) return undefined;
    if (spec.ops && !spec.ops.includes(op)) return undefined;
    if (spec.probability !== undefined && this.random() >= spec.probability) return undefined;
    if (this.shared) {
      // Taken before firing: a crash or hang must not be able to skip the decrement.
      const left = Atomics.sub(this.shared, 0, 1) - 1;
      if (left <= 0) this.spec = undefined;
      if (left < 0) return undefined; // another worker of this handle fired the last one
    } else if (--this.remaining <= 0) this.spec = undefined;
    this.injected++;
    switch (spec.mode) {
      case 'crash':
        return { mode: 'crash' };
      case 'crash-after':
        return { mode: 'crash-after' };
      case 'hang':
        return { mode: 'hang' };
      case 'delay':
        return { mode: 'delay', delayMs: spec.delayMs ?? 0 };
      case 'error': {
        const errno = spec.errno ?? osConstants.errno.EIO;
        const code = errorCodeForErrno(errno) ?? 'IMAP_E_IO';
        return { mode: 'error', error: new ImapError(code, `injected fault in op ${op}`) };
      }
    }
  }
}
