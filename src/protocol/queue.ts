/**
 * The bounded request queue in front of every actor.
 *
 * Service order, from the outside in:
 *   1. Strict class priority: metadata > interactive > fsync > background. A queued item of a higher
 *      class always goes first; lower classes only run when higher ones are empty.
 *   2. Fair share across callers within a class. Each caller (FUSE pid, or uid) has its own lane. Lanes
 *      are served in rounds: in a round every lane may take `quantum` items; a lane that used its
 *      quantum waits for the next round. So while k callers have work queued in a class, an item at
 *      the head of a lane waits for at most `quantum × (k − 1)` items of other callers.
 *   3. Earliest deadline first: within a lane by the item's deadline, and among the lanes that still
 *      have credit in this round by the deadline of their head item. Ties go to the older item.
 *
 * Bounds and backpressure: each class holds at most `capacity[class]` items and the queue at most
 * `totalCapacity`. When the total is reached, an item of a higher class displaces ("sheds") the
 * queued background item with the latest deadline, whose owner gets IMAP_E_OVERLOADED. When an
 * item cannot be admitted, `enqueue` waits for space up to `admitTimeoutMs[class]` (background: 0,
 * so background work is refused at once), with at most `maxWaiters[class]` waiting; then it rejects
 * with IMAP_E_OVERLOADED. Memory is therefore bounded by capacity + waiters, whatever the flood.
 *
 * Deadlines never drop work: an item dequeued after its deadline is served and counted in
 * `servedLate`. Every operation is O(log n) in queued items (plus O(log k) in callers).
 *
 * Ownership: one RequestQueue belongs to one ActorHandle on the main thread; not thread-safe, and it
 * need not be (it never leaves the main event loop).
 */
import { ImapError } from './errors';
import { PRIORITY_CLASSES, type Caller, type PriorityClass } from './envelope';
import { IndexedHeap, type HeapPosition } from './heap';
import { monotonicNow } from './clock';

export interface Queueable {
  readonly priority: PriorityClass;
  readonly deadline: number;
  readonly caller: Caller;
}

export type PerClass<T> = Readonly<Record<PriorityClass, T>>;

export interface QueueLimits {
  /** Most items queued in one class. */
  readonly capacity: PerClass<number>;
  /** Most items queued in all classes together; reaching it sheds background work for higher classes. */
  readonly totalCapacity: number;
  /** Most enqueue calls waiting for space per class; beyond it they fail at once. */
  readonly maxWaiters: PerClass<number>;
  /** How long `enqueue` waits for space before rejecting with IMAP_E_OVERLOADED. */
  readonly admitTimeoutMs: PerClass<number>;
  /** Items a caller may take per round while other callers wait in the same class. */
  readonly quantum: number;
  /** What makes two callers different for fair share. */
  readonly fairBy: 'pid' | 'uid';
  /**
   * Most items handed out by `dequeue` and not yet `release`d, per class. A class at its limit is
   * passed over (lower classes may run), so background work can never hold every slot.
   */
  readonly inFlightPerClass: PerClass<number>;
  /** Most items out at once for one caller (by `fairBy`), all classes together; its other items wait. */
  readonly inFlightPerCaller: number;
}

export const DEFAULT_QUEUE_LIMITS: QueueLimits = {
  capacity: { metadata: 1024, interactive: 1024, fsync: 256, background: 256 },
  totalCapacity: 2048,
  maxWaiters: { metadata: 1024, interactive: 1024, fsync: 256, background: 0 },
  admitTimeoutMs: { metadata: 5000, interactive: 5000, fsync: 30000, background: 0 },
  quantum: 4,
  fairBy: 'pid',
  inFlightPerClass: {
    metadata: Infinity,
    interactive: Infinity,
    fsync: Infinity,
    background: Infinity,
  },
  inFlightPerCaller: Infinity,
};

export interface QueueStats {
  readonly depth: PerClass<number>;
  readonly waiting: PerClass<number>;
  /** Highest total depth seen. */
  readonly highWater: number;
  readonly admitted: PerClass<number>;
  /** Queued background items displaced by higher classes. */
  readonly shed: PerClass<number>;
  /** Items refused admission (full and no wait, or wait timed out). */
  readonly rejected: PerClass<number>;
  /** Items dequeued after their deadline (served anyway). */
  readonly servedLate: PerClass<number>;
  /** Items out (dequeued, not released). */
  readonly inFlight: PerClass<number>;
  /** Times a class or caller at its in-flight limit was passed over. */
  readonly limitedByClass: number;
  readonly limitedByCaller: number;
}

export interface QueueHooks<T> {
  /** Called when a queued item is displaced; its owner must be told (IMAP_E_OVERLOADED). */
  readonly onShed?: (item: T, error: ImapError) => void;
  readonly now?: () => number;
}

class QueuedNode<T> {
  laneIndex = -1;
  shedIndex = -1;
  constructor(
    readonly item: T & Queueable,
    readonly seq: number,
    readonly lane: CallerLane<T>,
  ) {}
}

class CallerLane<T> {
  readonly items = new IndexedHeap<QueuedNode<T>>(earliestDeadlineFirst, LANE_ITEM_POSITION);
  roundIndex = -1;
  round: IndexedHeap<CallerLane<T>> | undefined;
  constructor(
    readonly key: number,
    public credit: number,
  ) {}
}

interface Waiter<T> {
  readonly item: T & Queueable;
  readonly resolve: () => void;
  readonly reject: (err: ImapError) => void;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
}

function earliestDeadlineFirst<T>(a: QueuedNode<T>, b: QueuedNode<T>): boolean {
  return a.item.deadline < b.item.deadline || (a.item.deadline === b.item.deadline && a.seq < b.seq);
}

function latestDeadlineFirst<T>(a: QueuedNode<T>, b: QueuedNode<T>): boolean {
  return a.item.deadline > b.item.deadline || (a.item.deadline === b.item.deadline && a.seq > b.seq);
}

function laneWithEarliestHead<T>(a: CallerLane<T>, b: CallerLane<T>): boolean {
  return earliestDeadlineFirst(a.items.peek() as QueuedNode<T>, b.items.peek() as QueuedNode<T>);
}

const LANE_ITEM_POSITION: HeapPosition<{ laneIndex: number }> = {
  get: (node) => node.laneIndex,
  set: (node, index) => (node.laneIndex = index),
};
const SHED_POSITION: HeapPosition<{ shedIndex: number }> = {
  get: (node) => node.shedIndex,
  set: (node, index) => (node.shedIndex = index),
};
const ROUND_POSITION: HeapPosition<{ roundIndex: number }> = {
  get: (lane) => lane.roundIndex,
  set: (lane, index) => (lane.roundIndex = index),
};

/** One priority class: caller lanes served in rounds, plus its waiting line. */
class ClassQueue<T> {
  readonly lanes = new Map<number, CallerLane<T>>();
  currentRound = new IndexedHeap<CallerLane<T>>(laneWithEarliestHead, ROUND_POSITION);
  nextRound = new IndexedHeap<CallerLane<T>>(laneWithEarliestHead, ROUND_POSITION);
  /** Only the background class can be shed; other classes leave this undefined to save the upkeep. */
  readonly shedOrder: IndexedHeap<QueuedNode<T>> | undefined;
  size = 0;
  readonly waiters: Array<Waiter<T> | undefined> = [];
  waiterHead = 0;
  waiterCount = 0;
  admitted = 0;
  shed = 0;
  rejected = 0;
  servedLate = 0;
  inFlight = 0;

  constructor(readonly priority: PriorityClass) {
    this.shedOrder =
      priority === 'background'
        ? new IndexedHeap<QueuedNode<T>>(latestDeadlineFirst, SHED_POSITION)
        : undefined;
  }
}

export class RequestQueue<T extends Queueable> {
  readonly limits: QueueLimits;
  private readonly classes: Record<PriorityClass, ClassQueue<T>>;
  private readonly ordered: ReadonlyArray<ClassQueue<T>>;
  private readonly now: () => number;
  private readonly onShed: ((item: T, error: ImapError) => void) | undefined;
  private total = 0;
  private totalWaiters = 0;
  private highWater = 0;
  private seq = 0;
  private readonly callerInFlight = new Map<number, number>();
  private limitedByClass = 0;
  private limitedByCaller = 0;

  constructor(limits: Partial<QueueLimits> = {}, hooks: QueueHooks<T> = {}) {
    this.limits = { ...DEFAULT_QUEUE_LIMITS, ...limits };
    if (this.limits.quantum < 1) throw new ImapError('IMAP_E_INVALID', 'queue quantum must be at least 1');
    this.classes = {
      metadata: new ClassQueue<T>('metadata'),
      interactive: new ClassQueue<T>('interactive'),
      fsync: new ClassQueue<T>('fsync'),
      background: new ClassQueue<T>('background'),
    };
    this.ordered = PRIORITY_CLASSES.map((priority) => this.classes[priority]);
    this.now = hooks.now ?? monotonicNow;
    this.onShed = hooks.onShed;
  }

  get size(): number {
    return this.total;
  }

  depth(priority: PriorityClass): number {
    return this.classes[priority].size;
  }

  /** Admit now if there is room (shedding background work if needed); never waits. */
  tryEnqueue(item: T): boolean {
    const queue = this.classes[item.priority];
    // Newcomers do not overtake callers already waiting for space in the same class.
    if (queue.waiterCount > 0) return false;
    return this.admit(item, queue);
  }

  /**
   * Admit the item, waiting for space if needed. Rejects with IMAP_E_OVERLOADED when the class is
   * full and the wait line is full too, or when no space appeared within the admission timeout.
   */
  enqueue(item: T, admitTimeoutMs = this.limits.admitTimeoutMs[item.priority]): Promise<void> {
    if (this.tryEnqueue(item)) return Promise.resolve();
    const queue = this.classes[item.priority];
    const maxWaiters = this.limits.maxWaiters[item.priority];
    if (admitTimeoutMs <= 0 || queue.waiterCount >= maxWaiters) {
      queue.rejected++;
      const why =
        admitTimeoutMs <= 0 ? 'full, and this class does not wait' : `full, and ${maxWaiters} already wait`;
      return Promise.reject(this.overloaded(queue, why));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter<T> = { item, resolve, reject, timer: undefined, settled: false };
      waiter.timer = setTimeout(() => {
        if (waiter.settled) return;
        waiter.settled = true;
        queue.waiterCount--;
        this.totalWaiters--;
        queue.rejected++;
        reject(this.overloaded(queue, `no room within ${admitTimeoutMs} ms`));
      }, admitTimeoutMs);
      queue.waiters.push(waiter);
      queue.waiterCount++;
      this.totalWaiters++;
    });
  }

  /**
   * The next item to serve, or undefined when nothing queued may go now (empty, or every class and
   * caller with work is at its in-flight limit). Hand the item back with `release` when it is done.
   */
  dequeue(): T | undefined {
    if (this.total === 0) return undefined;
    for (const queue of this.ordered) {
      if (queue.size === 0) continue;
      if (queue.inFlight >= this.limits.inFlightPerClass[queue.priority]) {
        this.limitedByClass++;
        continue;
      }
      const item = this.takeFrom(queue);
      if (item === undefined) continue;
      queue.inFlight++;
      const key = this.callerKey(item);
      this.callerInFlight.set(key, (this.callerInFlight.get(key) ?? 0) + 1);
      if (this.totalWaiters > 0) this.admitWaiters();
      return item;
    }
    return undefined;
  }

  /** An item `dequeue` returned is done (answered, failed or abandoned): its limits free up. */
  release(item: T): void {
    const queue = this.classes[item.priority];
    if (queue.inFlight > 0) queue.inFlight--;
    const key = this.callerKey(item);
    const n = this.callerInFlight.get(key) ?? 0;
    if (n <= 1) this.callerInFlight.delete(key);
    else this.callerInFlight.set(key, n - 1);
  }

  /** Empties the queue (shutdown): returns what was queued and rejects everyone still waiting. */
  drainAll(reason: ImapError): T[] {
    const items: T[] = [];
    for (const queue of this.ordered) {
      while (queue.size > 0) {
        const lane = queue.currentRound.peek() ?? queue.nextRound.peek();
        if (!lane) break;
        if (!queue.currentRound.contains(lane)) {
          const finished = queue.currentRound;
          queue.currentRound = queue.nextRound;
          queue.nextRound = finished;
        }
        items.push(this.takeFromLane(queue, lane));
      }
      for (let i = queue.waiterHead; i < queue.waiters.length; i++) {
        const waiter = queue.waiters[i];
        if (!waiter || waiter.settled) continue;
        waiter.settled = true;
        clearTimeout(waiter.timer);
        waiter.reject(reason);
      }
      queue.waiters.length = 0;
      queue.waiterHead = 0;
      queue.waiterCount = 0;
    }
    this.totalWaiters = 0;
    return items;
  }

  stats(): QueueStats {
    const perClass = (pick: (queue: ClassQueue<T>) => number): PerClass<number> => ({
      metadata: pick(this.classes.metadata),
      interactive: pick(this.classes.interactive),
      fsync: pick(this.classes.fsync),
      background: pick(this.classes.background),
    });
    return {
      depth: perClass((q) => q.size),
      waiting: perClass((q) => q.waiterCount),
      highWater: this.highWater,
      admitted: perClass((q) => q.admitted),
      shed: perClass((q) => q.shed),
      rejected: perClass((q) => q.rejected),
      servedLate: perClass((q) => q.servedLate),
      inFlight: perClass((q) => q.inFlight),
      limitedByClass: this.limitedByClass,
      limitedByCaller: this.limitedByCaller,
    };
  }

  private admit(item: T, queue: ClassQueue<T>): boolean {
    if (queue.size >= this.limits.capacity[item.priority]) return false;
    if (this.total >= this.limits.totalCapacity) {
      const background = this.classes.background;
      // Shedding a background item for another background item would only churn.
      if (queue === background || background.size === 0) return false;
      this.shedLatest(background);
    }
    const key = this.callerKey(item);
    let lane = queue.lanes.get(key);
    const isNewLane = lane === undefined;
    if (!lane) {
      lane = new CallerLane<T>(key, this.limits.quantum);
      queue.lanes.set(key, lane);
    }
    const node = new QueuedNode<T>(item, this.seq++, lane);
    lane.items.push(node);
    if (isNewLane) {
      // A caller that had nothing queued joins the round in progress, with a full quantum.
      lane.round = queue.currentRound;
      queue.currentRound.push(lane);
    } else if (lane.items.peek() === node) {
      lane.round?.update(lane);
    }
    queue.shedOrder?.push(node);
    queue.size++;
    queue.admitted++;
    this.total++;
    if (this.total > this.highWater) this.highWater = this.total;
    return true;
  }

  private callerKey(item: Queueable): number {
    return this.limits.fairBy === 'pid' ? item.caller.pid : item.caller.uid;
  }

  private callerAtLimit(key: number): boolean {
    return (this.callerInFlight.get(key) ?? 0) >= this.limits.inFlightPerCaller;
  }

  /**
   * The head of the best lane in this class whose caller is under its in-flight limit. Lanes of
   * callers at their limit step aside for this call and keep their credit and place.
   */
  private takeFrom(queue: ClassQueue<T>): T | undefined {
    let parked: Array<CallerLane<T>> | undefined;
    let lane: CallerLane<T> | undefined;
    for (;;) {
      if (queue.currentRound.size === 0) {
        if (queue.nextRound.size === 0) break;
        // Everyone used their quantum: the next round starts (credits were refilled on the way out).
        const finished = queue.currentRound;
        queue.currentRound = queue.nextRound;
        queue.nextRound = finished;
      }
      const head = queue.currentRound.peek() as CallerLane<T>;
      if (!this.callerAtLimit(head.key)) {
        lane = head;
        break;
      }
      this.limitedByCaller++;
      queue.currentRound.remove(head);
      (parked ??= []).push(head);
    }
    if (parked) {
      // Back into the round they were in (`round` follows the heap object across a round swap).
      for (const l of parked) (l.round ?? queue.currentRound).push(l);
    }
    if (!lane) return undefined;
    return this.takeFromLane(queue, lane);
  }

  private takeFromLane(queue: ClassQueue<T>, lane: CallerLane<T>): T {
    const node = lane.items.pop() as QueuedNode<T>;
    queue.shedOrder?.remove(node);
    lane.credit--;
    if (lane.items.size === 0) {
      queue.currentRound.remove(lane);
      queue.lanes.delete(lane.key);
    } else if (lane.credit <= 0) {
      queue.currentRound.remove(lane);
      lane.credit = this.limits.quantum;
      lane.round = queue.nextRound;
      queue.nextRound.push(lane);
    } else {
      queue.currentRound.update(lane);
    }
    queue.size--;
    this.total--;
    if (node.item.deadline < this.now()) queue.servedLate++;
    return node.item;
  }

  private shedLatest(queue: ClassQueue<T>): void {
    const node = queue.shedOrder?.pop();
    if (!node) return;
    const lane = node.lane;
    lane.items.remove(node);
    if (lane.items.size === 0) {
      lane.round?.remove(lane);
      queue.lanes.delete(lane.key);
    } else {
      lane.round?.update(lane);
    }
    queue.size--;
    queue.shed++;
    this.total--;
    this.onShed?.(node.item, this.overloaded(queue, 'shed to make room for higher-priority work'));
  }

  private admitWaiters(): void {
    for (const queue of this.ordered) {
      while (queue.waiterHead < queue.waiters.length) {
        const waiter = queue.waiters[queue.waiterHead];
        if (waiter && !waiter.settled) {
          if (!this.admit(waiter.item, queue)) break;
          waiter.settled = true;
          clearTimeout(waiter.timer);
          queue.waiterCount--;
          this.totalWaiters--;
          waiter.resolve();
        }
        queue.waiters[queue.waiterHead++] = undefined;
      }
      // Compact the wait line once its consumed prefix dominates, keeping pushes amortised O(1).
      if (queue.waiterHead > 64 && queue.waiterHead * 2 > queue.waiters.length) {
        queue.waiters.splice(0, queue.waiterHead);
        queue.waiterHead = 0;
      }
    }
  }

  private overloaded(queue: ClassQueue<T>, why: string): ImapError {
    const capacity = this.limits.capacity[queue.priority];
    return new ImapError(
      'IMAP_E_OVERLOADED',
      `${queue.priority} queue ${queue.size}/${capacity}, total ${this.total}/${this.limits.totalCapacity}: ${why}`,
    );
  }
}
