import { RangeGate, conflicts, type Claim } from '../../src/map/range-gate';

const r = (start: number, end: number) => ({ start, end });

/** Enters every claim at once (in order), then lets each leave when asked; records start order. */
function harness(gate: RangeGate) {
  const started: string[] = [];
  const leaves = new Map<string, () => void>();
  const enter = (label: string, claim: Claim) =>
    gate.enter(claim).then((ticket) => {
      started.push(label);
      leaves.set(label, () => ticket.leave());
    });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { started, enter, settle, leave: (label: string) => leaves.get(label)?.() };
}

describe('RangeGate', () => {
  test('conflict rules: writes exclude overlapping reads and writes; reads share; barriers', () => {
    expect(conflicts({ reads: [r(0, 4)] }, { reads: [r(0, 4)] })).toBe(false);
    expect(conflicts({ writes: [r(0, 4)] }, { reads: [r(3, 5)] })).toBe(true);
    expect(conflicts({ reads: [r(0, 4)] }, { writes: [r(3, 5)] })).toBe(true);
    expect(conflicts({ writes: [r(0, 4)] }, { writes: [r(4, 8)] })).toBe(false);
    expect(conflicts({ barrier: 'writes' }, { reads: [r(0, 1)] })).toBe(false);
    expect(conflicts({ barrier: 'writes' }, { writes: [r(0, 1)] })).toBe(true);
    expect(conflicts({ writes: [r(9, 10)] }, { barrier: 'writes' })).toBe(true);
    expect(conflicts({ reads: [r(9, 10)] }, { barrier: 'all' })).toBe(true);
    expect(conflicts({}, { barrier: 'all' })).toBe(true);
  });

  test('disjoint operations run at once; same-range writes run one by one in submission order', async () => {
    const gate = new RangeGate();
    const h = harness(gate);
    void h.enter('w1', { writes: [r(10, 11)] });
    void h.enter('other', { writes: [r(50, 60)] });
    void h.enter('w2', { writes: [r(10, 11)] });
    void h.enter('read', { reads: [r(10, 11)] });
    void h.enter('w3', { writes: [r(10, 11)] });
    await h.settle();
    expect(h.started).toEqual(['w1', 'other']);
    expect(gate.stats()).toMatchObject({ admitted: 5, waiting: 3 });
    h.leave('w1');
    await h.settle();
    expect(h.started).toEqual(['w1', 'other', 'w2']);
    h.leave('w2');
    await h.settle();
    // The read of cluster 10 goes before w3, which was submitted after it.
    expect(h.started).toEqual(['w1', 'other', 'w2', 'read']);
    h.leave('read');
    await h.settle();
    expect(h.started).toEqual(['w1', 'other', 'w2', 'read', 'w3']);
    h.leave('w3');
    h.leave('other');
    expect(gate.stats()).toEqual({ admitted: 0, waiting: 0, delayed: 3 });
  });

  test('a write barrier waits for earlier writes and holds later ones, but not reads', async () => {
    const gate = new RangeGate();
    const h = harness(gate);
    void h.enter('write', { writes: [r(1, 2)] });
    void h.enter('sync', { barrier: 'writes' });
    void h.enter('read', { reads: [r(7, 8)] });
    void h.enter('write-after', { writes: [r(3, 4)] });
    await h.settle();
    expect(h.started).toEqual(['write', 'read']);
    h.leave('write');
    await h.settle();
    expect(h.started).toEqual(['write', 'read', 'sync']);
    h.leave('sync');
    await h.settle();
    expect(h.started).toEqual(['write', 'read', 'sync', 'write-after']);
  });

  test('a full barrier runs alone', async () => {
    const gate = new RangeGate();
    const h = harness(gate);
    void h.enter('read', { reads: [r(1, 2)] });
    void h.enter('checkpoint', { barrier: 'all' });
    void h.enter('read-after', { reads: [r(5, 6)] });
    await h.settle();
    expect(h.started).toEqual(['read']);
    h.leave('read');
    await h.settle();
    expect(h.started).toEqual(['read', 'checkpoint']);
    h.leave('checkpoint');
    await h.settle();
    expect(h.started).toEqual(['read', 'checkpoint', 'read-after']);
  });

  test('leaving twice releases once', async () => {
    const gate = new RangeGate();
    const ticket = await gate.enter({ writes: [r(0, 1)] });
    ticket.leave();
    ticket.leave();
    expect(gate.stats().admitted).toBe(0);
  });
});
