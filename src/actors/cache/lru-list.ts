/**
 * An exact LRU order over small integer ids (slot or entry numbers), as an intrusive doubly linked
 * list in two Int32Arrays: O(1) touch, insert, remove and "least recently used", no object per entry.
 *
 * Why not quick-lru for the tiers: quick-lru (hashlru) keeps two generations of up to maxSize entries
 * each and drops the whole older generation at once. For a byte budget that means either 2× the
 * budget or half the capacity, and each generation switch evicts up to maxSize clusters in one call
 * (each one deflated into L2), a stall of tens to hundreds of ms. Here one insert evicts one cluster,
 * in exact LRU order (docs/cache.md).
 *
 * Ownership: the cache thread.
 */
export class LruList {
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly linked: Uint8Array;
  /** Most recently used, or -1. */
  private head = -1;
  /** Least recently used, or -1. */
  private tail = -1;
  size = 0;

  constructor(capacity: number) {
    this.prev = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
    this.linked = new Uint8Array(capacity);
  }

  /** The least recently used id, or -1 when empty. */
  get lru(): number {
    return this.tail;
  }

  has(id: number): boolean {
    return this.linked[id] === 1;
  }

  /** Makes `id` the most recently used (inserting it if needed). */
  touch(id: number): void {
    if (this.linked[id] === 1) {
      if (this.head === id) return;
      this.unlink(id);
    }
    this.prev[id] = -1;
    this.next[id] = this.head;
    if (this.head >= 0) this.prev[this.head] = id;
    this.head = id;
    if (this.tail < 0) this.tail = id;
    this.linked[id] = 1;
    this.size++;
  }

  remove(id: number): void {
    if (this.linked[id] === 1) this.unlink(id);
  }

  /** Ids from least to most recently used. */
  *ascending(): Generator<number> {
    for (let id = this.tail; id >= 0; id = this.prev[id]!) yield id;
  }

  /** Ids from most to least recently used. */
  *descending(): Generator<number> {
    for (let id = this.head; id >= 0; id = this.next[id]!) yield id;
  }

  clear(): void {
    this.head = this.tail = -1;
    this.size = 0;
    this.linked.fill(0);
  }

  private unlink(id: number): void {
    const p = this.prev[id]!;
    const n = this.next[id]!;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
    this.linked[id] = 0;
    this.size--;
  }
}
