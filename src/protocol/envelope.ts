/**
 * Typed request and reply envelopes: what travels between the FUSE front end, the supervisor and
 * the actors. An envelope is a plain object so that it crosses a worker boundary by structured clone;
 * bulk data never rides in it, only a `SlotRef` into a shared `ClusterSlab`.
 *
 * Ownership: the sender builds an envelope and never mutates it after posting; the receiver owns its
 * clone. Slot ownership is separate and explicit (see src/actors/runtime/slab.ts).
 */
import { ERROR_TABLE, ImapError, fromSystemError, type ErrorCode } from './errors';

/** Served strictly in this order: a queued metadata op always goes before any interactive one. */
export const PRIORITY_CLASSES = ['metadata', 'interactive', 'fsync', 'background'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

export const PRIORITY_RANK: Readonly<Record<PriorityClass, number>> = {
  metadata: 0,
  interactive: 1,
  fsync: 2,
  background: 3,
};

export function isPriorityClass(value: unknown): value is PriorityClass {
  return typeof value === 'string' && value in PRIORITY_RANK;
}

/** Who asked: the FUSE request context, or the daemon itself for its own work. */
export interface Caller {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** The daemon as a caller (checkpoints, scans, prefetch). */
export const DAEMON_CALLER: Caller = Object.freeze({
  pid: process.pid,
  uid: process.getuid?.() ?? 0,
  gid: process.getgid?.() ?? 0,
});

/** Bytes `[offset, offset + length)` of slot `slot` in the slab numbered `slab`. */
export interface SlotRef {
  readonly slab: number;
  readonly slot: number;
  readonly offset: number;
  readonly length: number;
}

/** One operation of an actor's protocol: what it takes and what it answers. */
export interface OpSpec {
  readonly payload: unknown;
  readonly result: unknown;
}

/**
 * An actor's protocol: op name → OpSpec. Written as a mapped constraint (not `Record<string, …>`)
 * so that plain interfaces qualify, e.g. `interface EchoOps { echo: { payload: …; result: … } }`.
 */
export type OpMap<P> = { readonly [K in keyof P]: OpSpec };
export type OpName<P> = Extract<keyof P, string>;
export type PayloadOf<P, K extends keyof P> = P[K] extends OpSpec ? P[K]['payload'] : never;
export type ResultOf<P, K extends keyof P> = P[K] extends OpSpec ? P[K]['result'] : never;

export interface Request<Op extends string = string, Payload = unknown> {
  /** Unique per actor handle; a retried request keeps its id and gets a higher `attempt`. */
  readonly id: number;
  readonly op: Op;
  readonly priority: PriorityClass;
  /** Absolute milliseconds on `monotonicNow()`'s clock. Late requests are still served, and counted. */
  readonly deadline: number;
  readonly caller: Caller;
  /** W3C traceparent: `00-<trace id>-<parent span id>-<flags>`. */
  readonly trace: string;
  readonly payload: Payload;
  /** Bulk input, by reference. */
  readonly data?: SlotRef;
  /** 1 for the first delivery; higher when the supervisor retries an idempotent request after a crash. */
  readonly attempt: number;
}

/** An ImapError flattened for structured clone (class instances lose their prototype across threads). */
export interface SerializedError {
  readonly code: ErrorCode;
  readonly errno: number;
  readonly message: string;
  readonly detail?: string;
}

export interface ReplyOk<Result = unknown> {
  readonly id: number;
  readonly ok: true;
  /** Bulk output travels as SlotRefs inside the result. */
  readonly result: Result;
}

export interface ReplyError {
  readonly id: number;
  readonly ok: false;
  readonly error: SerializedError;
}

export type Reply<Result = unknown> = ReplyOk<Result> | ReplyError;

/**
 * Anything a handler throws becomes a table code: ImapErrors keep theirs, Node system errors are
 * mapped, and anything else is a bug (IMAP_E_INTERNAL) with its message kept as the detail.
 */
export function serializeError(err: unknown): SerializedError {
  const imapError = toImapError(err);
  return {
    code: imapError.code,
    errno: imapError.errno,
    message: imapError.message,
    ...(imapError.detail === undefined ? {} : { detail: imapError.detail }),
  };
}

export function deserializeError(wire: SerializedError): ImapError {
  const code: ErrorCode = wire.code in ERROR_TABLE ? wire.code : 'IMAP_E_INTERNAL';
  return new ImapError(code, wire.detail);
}

function toImapError(err: unknown): ImapError {
  if (err instanceof ImapError) return err;
  const systemCode = (err as { code?: unknown } | null)?.code;
  if (typeof systemCode === 'string' && /^E[A-Z]+$/.test(systemCode)) return fromSystemError(err, 'in actor');
  const why = err instanceof Error ? err.message : String(err);
  return new ImapError('IMAP_E_INTERNAL', why, { cause: err });
}

// Several codes share an errno (EIO has nine); an injected or foreign errno maps to the generic one.
const GENERIC_CODES: readonly ErrorCode[] = [
  'IMAP_E_IO',
  'IMAP_E_INVALID',
  'IMAP_E_NOT_FOUND',
  'IMAP_E_NO_SPACE',
  'IMAP_E_BUSY',
  'IMAP_E_OVERLOADED',
  'IMAP_E_TIMEOUT',
];

/** The table code that stands for a bare errno, or undefined if the table has none with it. */
export function errorCodeForErrno(errno: number): ErrorCode | undefined {
  for (const code of GENERIC_CODES) if (ERROR_TABLE[code].errno === errno) return code;
  for (const code of Object.keys(ERROR_TABLE) as ErrorCode[])
    if (ERROR_TABLE[code].errno === errno) return code;
  return undefined;
}
