/**
 * ClusterSlab: a SharedArrayBuffer cut into fixed-size slots (1 MiB by default: one cluster run),
 * so that bulk data moves between threads by slot number, never by structured clone.
 *
 * Ownership: a slot belongs to whoever allocated it until that party frees it or hands it over in a
 * message (then the receiver owns it). The free list is shared and lock-free, so any thread may
 * allocate or free; the bytes of a slot are only touched by its current owner.
 *
 * Layout (one SharedArrayBuffer):
 *   [0, 64)        control words (Int32): magic, slotSize, slotCount, free count, free sequence, waiters
 *                  and at byte 32 the free-list head (BigUint64: ABA tag << 32 | (slot + 1), 0 = empty)
 *   [64, …)        next[slotCount] (Int32, slot + 1 of the next free slot, 0 = end)
 *   then           state[slotCount] (Int32, 1 = allocated), catches double frees and stale refs
 *   page-aligned   slotCount × slotSize data bytes
 *
 * The free list is a Treiber stack. Each successful push/pop bumps a 32-bit tag in the head, so a
 * thread preempted between reading the head and its compare-exchange cannot be fooled by the same
 * slot having been popped and pushed again meanwhile (ABA) unless 2^32 operations happened in between.
 * LIFO reuse keeps recently used (already paged-in, cache-warm) slots hot; on these VMs the first
 * touch of a fresh page costs about 15 µs, so `prefault` touches every page once up front.
 */
import { ImapError } from '../../protocol/errors';
import type { SlotRef } from '../../protocol/envelope';

export const DEFAULT_SLOT_SIZE = 1 << 20;
const PAGE = 4096;
const MAGIC = 0x534c4142; // "SLAB"

const WORD_MAGIC = 0;
const WORD_SLOT_SIZE = 1;
const WORD_SLOT_COUNT = 2;
const WORD_FREE_COUNT = 3;
const WORD_FREE_SEQ = 4;
const WORD_WAITERS = 5;
const HEAD_BYTE_OFFSET = 32;
const CONTROL_BYTES = 64;

const INDEX_MASK = 0xffffffffn;

/** What crosses a thread boundary to share a slab: the SharedArrayBuffer itself is never copied. */
export interface ClusterSlabHandle {
  readonly id: number;
  readonly buffer: SharedArrayBuffer;
}

export interface ClusterSlabOptions {
  /** Distinguishes slabs in a SlotRef. */
  readonly id: number;
  readonly slotCount: number;
  /** Bytes per slot; a multiple of 4096. */
  readonly slotSize?: number;
  /** Touch every page now so the first write to a slot does not pay for page faults. */
  readonly prefault?: boolean;
}

type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
  timeoutMs: number,
) => { async: boolean; value: Promise<'ok' | 'timed-out'> | 'not-equal' | 'timed-out' };

// Atomics.waitAsync is in Node 20 (V8 11) but not yet in TypeScript's ES2023 lib.
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export class ClusterSlab {
  readonly id: number;
  readonly slotSize: number;
  readonly slotCount: number;
  readonly buffer: SharedArrayBuffer;
  private readonly control: Int32Array;
  private readonly head: BigUint64Array;
  private readonly next: Int32Array;
  private readonly state: Int32Array;
  private readonly dataOffset: number;
  private readonly slotViews: Array<Uint8Array | undefined>;

  static create(options: ClusterSlabOptions): ClusterSlab {
    const slotSize = options.slotSize ?? DEFAULT_SLOT_SIZE;
    const { slotCount } = options;
    if (!Number.isInteger(slotSize) || slotSize <= 0 || slotSize % PAGE !== 0) {
      throw new ImapError(
        'IMAP_E_INVALID',
        `slab slot size ${slotSize} is not a positive multiple of ${PAGE}`,
      );
    }
    if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > 0x7fffffff) {
      throw new ImapError('IMAP_E_INVALID', `slab slot count ${slotCount} out of range`);
    }
    const dataOffset = ClusterSlab.dataOffsetFor(slotCount);
    const buffer = new SharedArrayBuffer(dataOffset + slotSize * slotCount);
    const control = new Int32Array(buffer, 0, CONTROL_BYTES / 4);
    control[WORD_SLOT_SIZE] = slotSize;
    control[WORD_SLOT_COUNT] = slotCount;
    control[WORD_FREE_COUNT] = slotCount;
    // Free list 0 → 1 → … → n−1, so the first allocations take the lowest slots.
    const next = new Int32Array(buffer, CONTROL_BYTES, slotCount);
    for (let slot = 0; slot < slotCount - 1; slot++) next[slot] = slot + 2;
    next[slotCount - 1] = 0;
    new BigUint64Array(buffer, HEAD_BYTE_OFFSET, 1)[0] = 1n;
    Atomics.store(control, WORD_MAGIC, MAGIC);
    const slab = new ClusterSlab(options.id, buffer);
    if (options.prefault) slab.prefault();
    return slab;
  }

  /** The same slab in another thread, from the handle passed in workerData or a message. */
  static attach(handle: ClusterSlabHandle): ClusterSlab {
    return new ClusterSlab(handle.id, handle.buffer);
  }

  private static dataOffsetFor(slotCount: number): number {
    const metadataEnd = CONTROL_BYTES + 8 * slotCount;
    return Math.ceil(metadataEnd / PAGE) * PAGE;
  }

  private constructor(id: number, buffer: SharedArrayBuffer) {
    this.id = id;
    this.buffer = buffer;
    this.control = new Int32Array(buffer, 0, CONTROL_BYTES / 4);
    if (Atomics.load(this.control, WORD_MAGIC) !== MAGIC) {
      throw new ImapError('IMAP_E_INVALID', `buffer of slab ${id} is not a ClusterSlab`);
    }
    this.slotSize = this.control[WORD_SLOT_SIZE] as number;
    this.slotCount = this.control[WORD_SLOT_COUNT] as number;
    this.head = new BigUint64Array(buffer, HEAD_BYTE_OFFSET, 1);
    this.next = new Int32Array(buffer, CONTROL_BYTES, this.slotCount);
    this.state = new Int32Array(buffer, CONTROL_BYTES + 4 * this.slotCount, this.slotCount);
    this.dataOffset = ClusterSlab.dataOffsetFor(this.slotCount);
    this.slotViews = new Array<Uint8Array | undefined>(this.slotCount);
  }

  handle(): ClusterSlabHandle {
    return { id: this.id, buffer: this.buffer };
  }

  get freeSlots(): number {
    return Atomics.load(this.control, WORD_FREE_COUNT);
  }

  /** A free slot, now owned by the caller, or -1 when every slot is in use. Lock-free, O(1). */
  tryAlloc(): number {
    for (;;) {
      const head = Atomics.load(this.head, 0);
      const slotPlusOne = Number(head & INDEX_MASK);
      if (slotPlusOne === 0) return -1;
      const slot = slotPlusOne - 1;
      const nextPlusOne = Atomics.load(this.next, slot);
      const tag = (head >> 32n) + 1n;
      const replacement = ((tag & INDEX_MASK) << 32n) | BigInt(nextPlusOne);
      if (Atomics.compareExchange(this.head, 0, head, replacement) === head) {
        Atomics.store(this.state, slot, 1);
        Atomics.sub(this.control, WORD_FREE_COUNT, 1);
        return slot;
      }
    }
  }

  /** A free slot, waiting up to `timeoutMs` for one to be freed (by any thread). */
  async alloc(timeoutMs: number): Promise<number> {
    const giveUpAt = Date.now() + timeoutMs;
    for (;;) {
      const sequence = Atomics.load(this.control, WORD_FREE_SEQ);
      const slot = this.tryAlloc();
      if (slot >= 0) return slot;
      const left = giveUpAt - Date.now();
      if (left <= 0) {
        throw new ImapError('IMAP_E_OVERLOADED', `slab ${this.id}: all ${this.slotCount} slots in use`);
      }
      Atomics.add(this.control, WORD_WAITERS, 1);
      try {
        const wait = waitAsync(this.control, WORD_FREE_SEQ, sequence, left);
        if (wait.async) await wait.value;
      } finally {
        Atomics.sub(this.control, WORD_WAITERS, 1);
      }
    }
  }

  /** Returns a slot to the free list. Throws on a double free or a slot that was never allocated. */
  free(slot: number): void {
    this.checkSlot(slot);
    if (Atomics.compareExchange(this.state, slot, 1, 0) !== 1) {
      throw new ImapError('IMAP_E_INTERNAL', `slab ${this.id}: slot ${slot} freed twice`);
    }
    for (;;) {
      const head = Atomics.load(this.head, 0);
      Atomics.store(this.next, slot, Number(head & INDEX_MASK));
      const tag = (head >> 32n) + 1n;
      const replacement = ((tag & INDEX_MASK) << 32n) | BigInt(slot + 1);
      if (Atomics.compareExchange(this.head, 0, head, replacement) === head) break;
    }
    Atomics.add(this.control, WORD_FREE_COUNT, 1);
    Atomics.add(this.control, WORD_FREE_SEQ, 1);
    if (Atomics.load(this.control, WORD_WAITERS) > 0) Atomics.notify(this.control, WORD_FREE_SEQ);
  }

  isAllocated(slot: number): boolean {
    this.checkSlot(slot);
    return Atomics.load(this.state, slot) === 1;
  }

  /** The whole slot as a view (no copy). */
  bytes(slot: number): Uint8Array {
    this.checkSlot(slot);
    let view = this.slotViews[slot];
    if (!view) {
      view = new Uint8Array(this.buffer, this.dataOffset + slot * this.slotSize, this.slotSize);
      this.slotViews[slot] = view;
    }
    return view;
  }

  ref(slot: number, offset = 0, length = this.slotSize - offset): SlotRef {
    const ref: SlotRef = { slab: this.id, slot, offset, length };
    this.view(ref);
    return ref;
  }

  /** The bytes a SlotRef names, after checking it points into an allocated slot of this slab. */
  view(ref: SlotRef): Uint8Array {
    if (ref.slab !== this.id) {
      throw new ImapError('IMAP_E_INTERNAL', `slot ref for slab ${ref.slab} used on slab ${this.id}`);
    }
    const { offset, length } = ref;
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0) {
      throw new ImapError('IMAP_E_INTERNAL', `bad slot ref range ${offset}+${length}`);
    }
    if (offset + length > this.slotSize) {
      throw new ImapError(
        'IMAP_E_INTERNAL',
        `slot ref ${offset}+${length} exceeds slot size ${this.slotSize}`,
      );
    }
    if (!this.isAllocated(ref.slot)) {
      throw new ImapError('IMAP_E_INTERNAL', `slab ${this.id}: slot ${ref.slot} is not allocated`);
    }
    return this.bytes(ref.slot).subarray(offset, offset + length);
  }

  /** Writes one byte per page so that later writes find the pages mapped. */
  prefault(): void {
    const data = new Uint8Array(this.buffer, this.dataOffset);
    for (let offset = 0; offset < data.length; offset += PAGE) data[offset] = 0;
  }

  private checkSlot(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slotCount) {
      throw new ImapError(
        'IMAP_E_INTERNAL',
        `slab ${this.id}: slot ${slot} out of range 0..${this.slotCount - 1}`,
      );
    }
  }
}

/** The slabs one thread knows, by id: resolves any SlotRef it receives. */
export class SlabSet {
  private readonly byId = new Map<number, ClusterSlab>();

  constructor(slabs: Iterable<ClusterSlab> = []) {
    for (const slab of slabs) this.add(slab);
  }

  static attach(handles: readonly ClusterSlabHandle[]): SlabSet {
    return new SlabSet(handles.map((handle) => ClusterSlab.attach(handle)));
  }

  add(slab: ClusterSlab): void {
    if (this.byId.has(slab.id)) throw new ImapError('IMAP_E_INTERNAL', `two slabs with id ${slab.id}`);
    this.byId.set(slab.id, slab);
  }

  get(id: number): ClusterSlab {
    const slab = this.byId.get(id);
    if (!slab) throw new ImapError('IMAP_E_INTERNAL', `unknown slab ${id}`);
    return slab;
  }

  view(ref: SlotRef): Uint8Array {
    return this.get(ref.slab).view(ref);
  }

  handles(): ClusterSlabHandle[] {
    return [...this.byId.values()].map((slab) => slab.handle());
  }
}
