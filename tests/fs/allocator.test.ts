import { ClusterAllocator } from '../../src/fs/allocator';
import { expectCode, makeFs } from '../helpers/fs-fixture';

describe('ClusterAllocator', () => {
  it('best-fits, continues next to a file, and coalesces on free', () => {
    const fx = makeFs(100);
    try {
      const a = new ClusterAllocator(fx.store);
      const r1 = a.allocate(10);
      expect(r1).toEqual([{ start: 0, length: 10 }]);
      const r2 = a.allocate(5);
      expect(r2).toEqual([{ start: 10, length: 5 }]);
      // next fit: right after r1 is taken, so near=10 falls back to best fit
      expect(a.allocate(3, 15)).toEqual([{ start: 15, length: 3 }]);
      a.commit([...r1, ...r2, { start: 15, length: 3 }]);
      a.freeNow({ start: 0, length: 10 });
      a.freeNow({ start: 10, length: 5 });
      expect(fx.store.allFree()).toEqual([
        { start: 0, length: 15 },
        { start: 18, length: 82 },
      ]);
      // best fit takes the 15-cluster hole for a 12-cluster request
      expect(a.allocate(12)).toEqual([{ start: 0, length: 12 }]);
    } finally {
      fx.cleanup();
    }
  });

  it('keeps freed clusters pending until releasePending()', () => {
    const fx = makeFs(10);
    try {
      const a = new ClusterAllocator(fx.store);
      const r = a.allocate(10);
      a.commit(r);
      fx.store.transaction(() => a.free({ start: 0, length: 10 }));
      expectCode(() => a.allocate(1), 'IMAP_E_NO_SPACE');
      expect(a.releasePending()).toBe(10);
      expect(a.allocate(10)).toEqual([{ start: 0, length: 10 }]);
    } finally {
      fx.cleanup();
    }
  });

  it('persists free space, pending frees and reservations across reopen', () => {
    const fx = makeFs(64);
    try {
      let a = new ClusterAllocator(fx.store);
      const owned = a.allocate(16);
      a.commit(owned);
      a.allocate(8); // reserved, never committed: a crash between prepare and commit
      fx.store.transaction(() => a.free({ start: 4, length: 4 }));
      fx.reopen();
      a = new ClusterAllocator(fx.store);
      expect(fx.store.allReserved()).toEqual([{ start: 16, length: 8 }]);
      a.recover();
      expect(fx.store.allFree()).toEqual([
        { start: 4, length: 4 },
        { start: 16, length: 48 },
      ]);
    } finally {
      fx.cleanup();
    }
  });

  it('grows the map through the callback, or fails with IMAP_E_NO_SPACE', () => {
    const fx = makeFs(16);
    try {
      const calls: number[] = [];
      const a = new ClusterAllocator(fx.store, {
        grow: (_need, current) => {
          calls.push(current);
          return { side: 0, clusterCount: current * 4 };
        },
      });
      a.commit(a.allocate(10));
      const r = a.allocate(20, 10);
      // the tail of the old space coalesces with the new space: one contiguous run
      expect(r).toEqual([{ start: 10, length: 20 }]);
      expect(calls).toEqual([16]);
      expect(fx.store.info.clusterCount).toBe(64);
      const noGrow = new ClusterAllocator(fx.store);
      expectCode(() => noGrow.allocate(1000), 'IMAP_E_NO_SPACE');
    } finally {
      fx.cleanup();
    }
  });

  it('splits over free runs when the total suffices and no run fits', () => {
    const fx = makeFs(30);
    try {
      const a = new ClusterAllocator(fx.store);
      a.commit(a.allocate(30));
      a.freeNow({ start: 0, length: 5 });
      a.freeNow({ start: 10, length: 7 });
      a.freeNow({ start: 20, length: 3 });
      const r = a.allocate(12);
      expect(r.reduce((n, x) => n + x.length, 0)).toBe(12);
      expect(r[0]).toEqual({ start: 10, length: 7 });
    } finally {
      fx.cleanup();
    }
  });

  it('detects a double free', () => {
    const fx = makeFs(10);
    try {
      const a = new ClusterAllocator(fx.store);
      expectCode(() => a.freeNow({ start: 2, length: 2 }), 'IMAP_E_CORRUPT_METADATA');
    } finally {
      fx.cleanup();
    }
  });
});
