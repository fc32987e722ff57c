/**
 * W3C trace context (https://www.w3.org/TR/trace-context/) for every envelope. We create a
 * `traceparent` even while no exporter runs, so that one FUSE op can be followed through every actor
 * in the logs today and becomes one Jaeger trace once the OpenTelemetry exporter is switched on.
 *
 * Random ids come from a pooled CSPRNG buffer: one `randomFillSync` per ~170 trace ids instead of
 * one syscall per request.
 */
import { randomFillSync } from 'node:crypto';

const TRACEPARENT_PATTERN = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ALL_ZERO = /^0+$/;

const randomPool = Buffer.alloc(4096);
let randomPoolUsed = randomPool.length;

function randomHex(bytes: number): string {
  for (;;) {
    if (randomPoolUsed + bytes > randomPool.length) {
      randomFillSync(randomPool);
      randomPoolUsed = 0;
    }
    const hex = randomPool.toString('hex', randomPoolUsed, randomPoolUsed + bytes);
    randomPoolUsed += bytes;
    // The spec forbids all-zero ids; the chance is 2^-64 at worst, but the loop costs nothing.
    if (!ALL_ZERO.test(hex)) return hex;
  }
}

export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: string;
}

/** A new root trace: `00-<32 hex trace id>-<16 hex span id>-01` (sampled). */
export function newTraceparent(): string {
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}

/** The same trace with a new span id: what an actor uses for the span of its own work. */
export function childTraceparent(parent: string): string {
  const context = parseTraceparent(parent);
  if (!context) return newTraceparent();
  return `00-${context.traceId}-${randomHex(8)}-${context.flags}`;
}

export function parseTraceparent(value: string): TraceContext | undefined {
  const match = TRACEPARENT_PATTERN.exec(value);
  if (!match) return undefined;
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string];
  if (ALL_ZERO.test(traceId) || ALL_ZERO.test(spanId)) return undefined;
  return { traceId, spanId, flags };
}
