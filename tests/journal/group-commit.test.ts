import { GroupCommit } from '../../src/fuse/group-commit';

/** A sync that records when it started and takes `ms`. */
function recorder(ms: number) {
  const starts: number[] = [];
  let t = 0;
  const sync = async (): Promise<void> => {
    starts.push(t++);
    await new Promise((r) => setTimeout(r, ms));
  };
  return { sync, starts };
}

describe('group commit', () => {
  test('a lone fsync is one sync', async () => {
    const r = recorder(5);
    const g = new GroupCommit(r.sync, 2);
    await g.commit();
    expect(r.starts.length).toBe(1);
  });

  test('many concurrent fsyncs share at most two syncs', async () => {
    const r = recorder(20);
    const g = new GroupCommit(r.sync, 2);
    await Promise.all(Array.from({ length: 50 }, () => g.commit()));
    expect(r.starts.length).toBeLessThanOrEqual(2);
    expect(g.stats().requested).toBe(50);
  });

  test('an fsync asked during a sync waits for the next one', async () => {
    const order: string[] = [];
    let n = 0;
    const g = new GroupCommit(async () => {
      const id = ++n;
      order.push(`start${id}`);
      await new Promise((r) => setTimeout(r, 20));
      order.push(`end${id}`);
    }, 0);
    const first = g.commit();
    await new Promise((r) => setTimeout(r, 5)); // the first sync is running now
    const second = g.commit().then(() => order.push('second-done'));
    await Promise.all([first, second]);
    expect(order).toEqual(['start1', 'end1', 'start2', 'end2', 'second-done']);
  });

  test('a failed sync fails its own callers, and the next batch still runs', async () => {
    let calls = 0;
    const g = new GroupCommit(async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 10));
      if (calls === 1) throw new Error('disk on fire');
    }, 0);
    const a = g.commit();
    const b = g.commit();
    await expect(a).rejects.toThrow('disk on fire');
    await expect(b).resolves.toBeUndefined();
    expect(calls).toBe(2);
  });
});
