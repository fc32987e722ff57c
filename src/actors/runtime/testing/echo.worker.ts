/**
 * The example actor: small, real, and used by the runtime's tests and self-check. It echoes, sleeps,
 * fails on demand and reads/writes ClusterSlab slots, which covers every path of the runtime (typed
 * handlers, concurrency, errors, slot data) without any filesystem code.
 *
 * Ownership: its state (a counter and the options it was started with) is touched only by its handlers.
 */
import { createHash } from 'node:crypto';
import { ImapError } from '../../../protocol/errors';
import type { SlotRef } from '../../../protocol/envelope';
import { runActor } from '../host';
import type { ClusterSlab } from '../slab';
import type { EchoOps, EchoOptions } from './echo';

interface EchoState {
  served: number;
  readonly options: EchoOptions;
}

runActor<EchoOps, EchoState>({
  name: 'echo',
  concurrency: 4,
  init: ({ options }) => {
    const echoOptions = (options ?? {}) as EchoOptions;
    if (echoOptions.failInit) throw new Error('init told to fail');
    return { served: 0, options: echoOptions };
  },
  handlers: {
    echo: (payload, { state, request }) => {
      state.served++;
      return { text: payload.text, attempt: request.attempt, trace: request.trace, served: state.served };
    },
    sleep: async (payload) => {
      await new Promise((resolve) => setTimeout(resolve, payload.ms));
      return { slept: payload.ms };
    },
    fail: (payload) => {
      throw new ImapError(payload.code, 'echo told to fail');
    },
    fillSlot: (payload, { slabs }) => {
      const bytes = slabs.view(payload.ref);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (payload.seed + i * 31) & 0xff;
      return { sha256: sha256(bytes) };
    },
    hashSlot: (payload, { slabs }) => ({ sha256: sha256(slabs.view(payload.ref)) }),
    copySlot: (payload: { from: SlotRef; to: SlotRef }, { slabs }) => {
      slabs.view(payload.to).set(slabs.view(payload.from));
      return { copied: payload.from.length };
    },
    churnSlots: (payload, { slabs }) => ({ clashes: churn(slabs.get(payload.slab), payload) }),
    setHealth: (payload, context) => {
      if (payload.degraded) context.setDegraded(payload.reason ?? 'told to degrade');
      else context.setReady();
      return null;
    },
  },
  drain: (state) => {
    // Nothing to flush; a real actor closes files here. Logged so tests can see drain ran.
    if (state.options.logDrain) process.stdout.write(`echo drained after ${state.served} requests\n`);
  },
});

/**
 * Holds up to `hold` slots at a time, each stamped with this thread's marker in its first and last
 * word; a slot that is not still stamped when freed was handed to someone else meanwhile (a clash).
 */
function churn(slab: ClusterSlab, payload: { iterations: number; hold: number; marker: number }): number {
  const held: number[] = [];
  let clashes = 0;
  const release = (slot: number): void => {
    const words = new Int32Array(slab.buffer, slab.bytes(slot).byteOffset, slab.slotSize / 4);
    if (words[0] !== payload.marker || words[words.length - 1] !== payload.marker) clashes++;
    words[0] = 0;
    words[words.length - 1] = 0;
    slab.free(slot);
  };
  for (let i = 0; i < payload.iterations; i++) {
    const slot = slab.tryAlloc();
    if (slot >= 0) {
      const words = new Int32Array(slab.buffer, slab.bytes(slot).byteOffset, slab.slotSize / 4);
      if (words[0] !== 0) clashes++;
      words[0] = payload.marker;
      words[words.length - 1] = payload.marker;
      held.push(slot);
    }
    if (held.length >= payload.hold || (slot < 0 && held.length > 0)) release(held.shift() as number);
  }
  for (const slot of held) release(slot);
  return clashes;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
