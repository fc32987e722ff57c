import v8 from 'node:v8';
import vm from 'node:vm';
import { ImapError } from '../../src/protocol/errors';
import { RequestQueue, type QueueLimits } from '../../src/protocol/queue';
import type { Caller, PriorityClass } from '../../src/protocol/envelope';

interface Item {
  readonly name: string;
  readonly priority: PriorityClass;
  readonly deadline: number;
  readonly caller: Caller;
}

// A real collection before each heap reading, so the memory check measures retention, not garbage.
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

const alice: Caller = { pid: 100, uid: 1000, gid: 1000 };
const bob: Caller = { pid: 200, uid: 1001, gid: 1001 };

function item(name: string, priority: PriorityClass, deadline: number, caller: Caller = alice): Item {
  return { name, priority, deadline, caller };
}

function drain(queue: RequestQueue<Item>): string[] {
  const names: string[] = [];
  for (let next = queue.dequeue(); next; next = queue.dequeue()) names.push(next.name);
  return names;
}

const roomy: Partial<QueueLimits> = {
  capacity: { metadata: 100_000, interactive: 100_000, fsync: 100_000, background: 100_000 },
  totalCapacity: 400_000,
};

describe('RequestQueue ordering', () => {
  test('strict class priority: metadata > interactive > fsync > background', () => {
    const queue = new RequestQueue<Item>(roomy, { now: () => 0 });
    queue.tryEnqueue(item('bg', 'background', 1));
    queue.tryEnqueue(item('fsync', 'fsync', 2));
    queue.tryEnqueue(item('inter', 'interactive', 3));
    queue.tryEnqueue(item('meta', 'metadata', 4));
    expect(drain(queue)).toEqual(['meta', 'inter', 'fsync', 'bg']);
  });

  test('earliest deadline first within a class; ties keep arrival order', () => {
    const queue = new RequestQueue<Item>(roomy, { now: () => 0 });
    for (const [name, deadline] of [
      ['d30', 30],
      ['d10', 10],
      ['d20a', 20],
      ['d20b', 20],
      ['d5', 5],
    ] as const) {
      queue.tryEnqueue(item(name, 'interactive', deadline));
    }
    expect(drain(queue)).toEqual(['d5', 'd10', 'd20a', 'd20b', 'd30']);
  });

  test('fair share: a flooding caller cannot starve another (bound: quantum × (callers − 1))', () => {
    const quantum = 4;
    const queue = new RequestQueue<Item>({ ...roomy, quantum }, { now: () => 0 });
    // Alice floods 10 000 items with the EARLIEST deadlines; pure EDF would serve all of hers first.
    for (let i = 0; i < 10_000; i++) queue.tryEnqueue(item(`a${i}`, 'interactive', i, alice));
    for (let i = 0; i < 50; i++) queue.tryEnqueue(item(`b${i}`, 'interactive', 1_000_000 + i, bob));
    const order = drain(queue);
    // Every one of Bob's items is served after at most `quantum` of Alice's since Bob's previous one.
    let aliceSinceBob = 0;
    let bobServed = 0;
    for (const name of order) {
      if (name.startsWith('a')) {
        aliceSinceBob++;
      } else {
        expect(aliceSinceBob).toBeLessThanOrEqual(quantum);
        aliceSinceBob = 0;
        bobServed++;
      }
      if (bobServed === 50) break;
    }
    expect(bobServed).toBe(50);
    // And each caller's own items still come out in deadline order.
    const aliceOrder = order.filter((n) => n.startsWith('a')).map((n) => Number(n.slice(1)));
    expect(aliceOrder).toEqual([...aliceOrder].sort((x, y) => x - y));
  });

  test('counts items dequeued after their deadline (served, not dropped)', () => {
    let now = 0;
    const queue = new RequestQueue<Item>(roomy, { now: () => now });
    queue.tryEnqueue(item('late', 'fsync', 10));
    queue.tryEnqueue(item('ontime', 'fsync', 100));
    now = 50;
    expect(drain(queue)).toEqual(['late', 'ontime']);
    expect(queue.stats().servedLate.fsync).toBe(1);
  });

  test('stays O(log n): 200 000 items across 64 callers in seconds, not the hours a linear scan would take', () => {
    const queue = new RequestQueue<Item>(
      { capacity: { ...roomy.capacity!, interactive: 200_000 }, totalCapacity: 200_000 },
      { now: () => 0 },
    );
    const callers = Array.from({ length: 64 }, (_, i) => ({ pid: i + 1, uid: 0, gid: 0 }));
    const start = process.hrtime.bigint();
    for (let i = 0; i < 200_000; i++) {
      queue.tryEnqueue(item('x', 'interactive', (i * 7919) % 100_003, callers[i % 64]));
    }
    expect(drain(queue)).toHaveLength(200_000);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    // Generous for a loaded 2-core CI machine; about 0.7 s when idle.
    expect(ms).toBeLessThan(10_000);
  });
});

describe('RequestQueue bounds and backpressure', () => {
  const small: Partial<QueueLimits> = {
    capacity: { metadata: 8, interactive: 8, fsync: 8, background: 8 },
    totalCapacity: 10,
    maxWaiters: { metadata: 4, interactive: 4, fsync: 4, background: 0 },
    admitTimeoutMs: { metadata: 200, interactive: 50, fsync: 50, background: 0 },
  };

  test('a full class makes enqueue wait, then admits when space frees', async () => {
    const queue = new RequestQueue<Item>(small);
    for (let i = 0; i < 8; i++) expect(queue.tryEnqueue(item(`i${i}`, 'interactive', i))).toBe(true);
    expect(queue.tryEnqueue(item('extra', 'interactive', 0))).toBe(false);
    const admitted = queue.enqueue(item('waiter', 'interactive', 100));
    expect(queue.stats().waiting.interactive).toBe(1);
    queue.dequeue();
    await expect(admitted).resolves.toBeUndefined();
    expect(queue.depth('interactive')).toBe(8);
  });

  test('the wait times out with IMAP_E_OVERLOADED', async () => {
    const queue = new RequestQueue<Item>(small);
    for (let i = 0; i < 8; i++) queue.tryEnqueue(item(`i${i}`, 'interactive', i));
    const started = Date.now();
    await expect(queue.enqueue(item('waiter', 'interactive', 0))).rejects.toMatchObject({
      code: 'IMAP_E_OVERLOADED',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(queue.stats().rejected.interactive).toBe(1);
  });

  test('background is refused at once when its class is full', async () => {
    const queue = new RequestQueue<Item>(small);
    for (let i = 0; i < 8; i++) queue.tryEnqueue(item(`b${i}`, 'background', i));
    await expect(queue.enqueue(item('b-late', 'background', 0))).rejects.toBeInstanceOf(ImapError);
  });

  test('when the total is full, higher classes shed the latest-deadline background item first', () => {
    const shed: string[] = [];
    const queue = new RequestQueue<Item>(small, { onShed: (it) => shed.push(it.name) });
    for (let i = 0; i < 8; i++) queue.tryEnqueue(item(`b${i}`, 'background', i));
    queue.tryEnqueue(item('f0', 'fsync', 0));
    queue.tryEnqueue(item('f1', 'fsync', 0));
    expect(queue.size).toBe(10);
    expect(queue.tryEnqueue(item('m0', 'metadata', 0))).toBe(true);
    expect(queue.tryEnqueue(item('m1', 'metadata', 0))).toBe(true);
    expect(shed).toEqual(['b7', 'b6']);
    expect(queue.size).toBe(10);
    expect(queue.stats().shed.background).toBe(2);
    expect(drain(queue)).toEqual(['m0', 'm1', 'f0', 'f1', 'b0', 'b1', 'b2', 'b3', 'b4', 'b5']);
  });

  test('a flood of 200 000 enqueues keeps depth and waiters bounded, and memory flat', async () => {
    const queue = new RequestQueue<Item>(small);
    const outcomes = { admitted: 0, overloaded: 0 };
    collectGarbage();
    const heapBefore = process.memoryUsage().heapUsed;
    const settles: Array<Promise<void>> = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10_000; i++) {
        const priority: PriorityClass = (['metadata', 'interactive', 'background'] as const)[i % 3];
        settles.push(
          queue.enqueue(item('x', priority, i), 0).then(
            () => void outcomes.admitted++,
            () => void outcomes.overloaded++,
          ),
        );
      }
      await Promise.all(settles.splice(0));
      // A consumer that keeps up with only a few items per round.
      for (let i = 0; i < 5; i++) queue.dequeue();
      expect(queue.size).toBeLessThanOrEqual(10);
    }
    const stats = queue.stats();
    expect(stats.highWater).toBeLessThanOrEqual(10);
    expect(outcomes.admitted + outcomes.overloaded).toBe(200_000);
    expect(outcomes.overloaded).toBeGreaterThan(199_000);
    collectGarbage();
    // Nothing from the flood is retained: growth is far below what 200 000 queued items would need.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(20 * 1024 * 1024);
  });

  test('drainAll returns what was queued and rejects waiters', async () => {
    const queue = new RequestQueue<Item>(small);
    for (let i = 0; i < 8; i++) queue.tryEnqueue(item(`i${i}`, 'interactive', i));
    const waiting = queue.enqueue(item('w', 'interactive', 0));
    const items = queue.drainAll(new ImapError('IMAP_E_ACTOR_STOPPED'));
    expect(items).toHaveLength(8);
    await expect(waiting).rejects.toMatchObject({ code: 'IMAP_E_ACTOR_STOPPED' });
    expect(queue.size).toBe(0);
  });
});

describe('RequestQueue in-flight limits', () => {
  const carol: Caller = { pid: 300, uid: 1002, gid: 1002 };

  test('a class at its limit is passed over; lower classes run; release lets it go again', () => {
    const queue = new RequestQueue<Item>(
      { ...roomy, inFlightPerClass: { metadata: 1, interactive: 8, fsync: 8, background: 8 } },
      { now: () => 0 },
    );
    queue.tryEnqueue(item('m1', 'metadata', 1));
    queue.tryEnqueue(item('m2', 'metadata', 2));
    queue.tryEnqueue(item('i1', 'interactive', 3));
    const m1 = queue.dequeue();
    expect(m1?.name).toBe('m1');
    // m2 waits for m1: the interactive item goes first.
    expect(queue.dequeue()?.name).toBe('i1');
    expect(queue.dequeue()).toBeUndefined();
    expect(queue.stats().inFlight).toMatchObject({ metadata: 1, interactive: 1 });
    queue.release(m1 as Item);
    expect(queue.dequeue()?.name).toBe('m2');
    expect(queue.stats().limitedByClass).toBeGreaterThan(0);
  });

  test('a caller at its limit steps aside for other callers, and keeps its place', () => {
    const queue = new RequestQueue<Item>({ ...roomy, inFlightPerCaller: 2, quantum: 100 }, { now: () => 0 });
    for (let i = 0; i < 5; i++) queue.tryEnqueue(item(`a${i}`, 'interactive', i, alice));
    queue.tryEnqueue(item('b0', 'interactive', 10, bob));
    queue.tryEnqueue(item('c0', 'interactive', 11, carol));
    const out: Item[] = [];
    for (let next = queue.dequeue(); next; next = queue.dequeue()) out.push(next);
    // alice gets two, then is at her limit: bob and carol run, and nothing else may go.
    expect(out.map((i) => i.name)).toEqual(['a0', 'a1', 'b0', 'c0']);
    expect(queue.size).toBe(3);
    expect(queue.stats().limitedByCaller).toBeGreaterThan(0);
    queue.release(out[0] as Item);
    expect(queue.dequeue()?.name).toBe('a2');
    expect(queue.dequeue()).toBeUndefined();
    for (const i of out.slice(1)) queue.release(i);
    // a1 is back, a2 is out: one more for alice (a3), then she is at her limit again.
    expect(drain(queue)).toEqual(['a3']);
    queue.release(item('a2', 'interactive', 2, alice));
    expect(drain(queue)).toEqual(['a4']);
  });

  test('limits hold under a random mix: never more out than allowed, everything served', () => {
    const limits = { metadata: 2, interactive: 3, fsync: 1, background: 1 };
    const queue = new RequestQueue<Item>(
      { ...roomy, inFlightPerClass: limits, inFlightPerCaller: 2 },
      { now: () => 0 },
    );
    const classes: PriorityClass[] = ['metadata', 'interactive', 'fsync', 'background'];
    const callers = [alice, bob, carol];
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      queue.tryEnqueue(item(`x${i}`, classes[rand(4)]!, i, callers[rand(3)]!));
    }
    const out: Item[] = [];
    let served = 0;
    while (served < 2000) {
      for (let next = queue.dequeue(); next; next = queue.dequeue()) out.push(next);
      const perClass = { metadata: 0, interactive: 0, fsync: 0, background: 0 };
      const perCaller = new Map<number, number>();
      for (const o of out) {
        perClass[o.priority]++;
        perCaller.set(o.caller.pid, (perCaller.get(o.caller.pid) ?? 0) + 1);
      }
      for (const c of classes) expect(perClass[c]).toBeLessThanOrEqual(limits[c]);
      for (const n of perCaller.values()) expect(n).toBeLessThanOrEqual(2);
      expect(out.length).toBeGreaterThan(0);
      const done = out.splice(rand(out.length), 1)[0] as Item;
      queue.release(done);
      served++;
    }
    expect(queue.size).toBe(0);
  });
});
