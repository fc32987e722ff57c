/**
 * A binary min-heap whose items know their own position, so that removing or re-keying an arbitrary
 * item is O(log n) instead of a linear search. The position lives outside the heap (`HeapPosition`)
 * because one item may sit in two heaps at once (its caller's queue and the shed order).
 */
export interface HeapPosition<T> {
  get(item: T): number;
  /** -1 means "not in this heap". */
  set(item: T, index: number): void;
}

export class IndexedHeap<T> {
  private readonly items: T[] = [];

  constructor(
    /** True when `a` must come out before `b`. */
    private readonly before: (a: T, b: T) => boolean,
    private readonly position: HeapPosition<T>,
  ) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  contains(item: T): boolean {
    const index = this.position.get(item);
    return index >= 0 && this.items[index] === item;
  }

  push(item: T): void {
    this.items.push(item);
    this.position.set(item, this.items.length - 1);
    this.siftUp(this.items.length - 1);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  remove(item: T): boolean {
    if (!this.contains(item)) return false;
    this.removeAt(this.position.get(item));
    return true;
  }

  /** Restore order after the item's key changed in either direction. */
  update(item: T): void {
    const index = this.position.get(item);
    if (!this.siftUp(index)) this.siftDown(index);
  }

  private removeAt(index: number): void {
    const removed = this.items[index] as T;
    const last = this.items.pop() as T;
    this.position.set(removed, -1);
    if (index === this.items.length) return;
    this.items[index] = last;
    this.position.set(last, index);
    this.update(last);
  }

  private siftUp(start: number): boolean {
    const item = this.items[start] as T;
    let index = start;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = this.items[parentIndex] as T;
      if (!this.before(item, parent)) break;
      this.items[index] = parent;
      this.position.set(parent, index);
      index = parentIndex;
    }
    if (index === start) return false;
    this.items[index] = item;
    this.position.set(item, index);
    return true;
  }

  private siftDown(start: number): void {
    const item = this.items[start] as T;
    const count = this.items.length;
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= count) break;
      const right = left + 1;
      let child = left;
      if (right < count && this.before(this.items[right] as T, this.items[left] as T)) child = right;
      const childItem = this.items[child] as T;
      if (!this.before(childItem, item)) break;
      this.items[index] = childItem;
      this.position.set(childItem, index);
      index = child;
    }
    this.items[index] = item;
    this.position.set(item, index);
  }
}
