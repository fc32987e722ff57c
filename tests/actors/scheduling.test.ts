import v8 from 'node:v8';
import vm from 'node:vm';
import { Supervisor } from '../../src/actors/runtime/supervisor';
import type { ActorHandle } from '../../src/actors/runtime/handle';
import { echoSpec, type EchoOps } from '../../src/actors/runtime/testing/echo';
import { monotonicNow } from '../../src/protocol/clock';
import type { Caller, PriorityClass } from '../../src/protocol/envelope';

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

const writer: Caller = { pid: 4001, uid: 1000, gid: 1000 };
const reader: Caller = { pid: 4002, uid: 1000, gid: 1000 };
const ECHO_CONCURRENCY = 4;

/** Occupies all of the actor's concurrency so that what follows queues up on the main side. */
function block(echo: ActorHandle<EchoOps>, ms: number): Promise<unknown> {
  return Promise.all(
    Array.from({ length: ECHO_CONCURRENCY }, () => echo.request('sleep', { ms }, { priority: 'metadata' })),
  );
}

describe('scheduling through a real actor', () => {
  let supervisor: Supervisor;

  afterEach(async () => {
    await supervisor.stopAll();
  });

  async function startEcho(queue: Parameters<typeof echoSpec>[0] = {}): Promise<ActorHandle<EchoOps>> {
    supervisor = new Supervisor();
    const echo = supervisor.add<EchoOps>(echoSpec(queue));
    await supervisor.start();
    return echo;
  }

  test('priority order across classes, EDF within a class', async () => {
    const echo = await startEcho();
    const blocked = block(echo, 150);
    const now = monotonicNow();
    const sent: Array<{ label: string; priority: PriorityClass; deadline: number }> = [
      { label: 'bg-1', priority: 'background', deadline: now + 10 },
      { label: 'fsync-late', priority: 'fsync', deadline: now + 900 },
      { label: 'fsync-early', priority: 'fsync', deadline: now + 300 },
      { label: 'inter-1', priority: 'interactive', deadline: now + 500 },
      { label: 'meta-late', priority: 'metadata', deadline: now + 800 },
      { label: 'meta-early', priority: 'metadata', deadline: now + 200 },
    ];
    const results = await Promise.all(
      sent.map(({ label, priority, deadline }) =>
        echo.request('echo', { text: label }, { priority, deadline }).then((r) => r),
      ),
    );
    await blocked;
    const servedOrder = [...results].sort((a, b) => a.served - b.served).map((r) => r.text);
    expect(servedOrder).toEqual(['meta-early', 'meta-late', 'inter-1', 'fsync-early', 'fsync-late', 'bg-1']);
  });

  test('fair share: a flooding writer delays a reader by at most quantum items per reader item', async () => {
    const quantum = 4;
    const echo = await startEcho({ queue: { quantum } });
    const blocked = block(echo, 150);
    const now = monotonicNow();
    // The writer floods 400 requests with earlier deadlines than any of the reader's.
    const flood = Array.from({ length: 400 }, (_, i) =>
      echo.request('echo', { text: `w${i}` }, { caller: writer, deadline: now + 1000 + i }),
    );
    const reads = Array.from({ length: 10 }, (_, i) =>
      echo.request('echo', { text: `r${i}` }, { caller: reader, deadline: now + 5000 + i }),
    );
    const readResults = await Promise.all(reads);
    await Promise.all([...flood, blocked]);
    // Bound: the k-th read (1-based) is served within the first k × (quantum + 1) echo requests.
    readResults.forEach((result, index) => {
      expect(result.served).toBeLessThanOrEqual((index + 1) * (quantum + 1));
    });
  });

  test('in-flight limits: a background flood keeps to its class limit, metadata goes straight in', async () => {
    const echo = await startEcho({
      queue: {
        inFlightPerClass: { metadata: 4, interactive: 4, fsync: 4, background: 1 },
        inFlightPerCaller: 4,
      },
    });
    // 20 background sleeps of 40 ms: with a limit of 1 they take 800 ms one by one, and never more
    // than one is in the actor.
    const flood = Array.from({ length: 20 }, () =>
      echo.request('sleep', { ms: 40 }, { priority: 'background', caller: writer, admitTimeoutMs: 5000 }),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(echo.stats().inFlight).toBe(1);
    expect(echo.stats().queue.inFlight.background).toBe(1);
    // Metadata from another caller is not queued behind the flood: three slots are free for it.
    const meta = await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        echo.request('echo', { text: `m${i}` }, { priority: 'metadata', caller: reader }),
      ),
    );
    const backgroundServedSoFar = echo.stats().completed - 3;
    expect(backgroundServedSoFar).toBeLessThan(10);
    expect(meta.map((m) => m.text)).toEqual(['m0', 'm1', 'm2']);
    await Promise.all(flood);
    expect(echo.stats().queue.limitedByClass).toBeGreaterThan(0);
    expect(echo.stats().queue.inFlight).toEqual({ metadata: 0, interactive: 0, fsync: 0, background: 0 });
  });

  test('missed deadlines are served late and counted, never dropped', async () => {
    const echo = await startEcho();
    const blocked = block(echo, 100);
    const deadline = monotonicNow() + 5;
    const late = await Promise.all(
      Array.from({ length: 5 }, () => echo.request('echo', { text: 'late' }, { deadline })),
    );
    await blocked;
    expect(late).toHaveLength(5);
    const stats = echo.stats();
    expect(stats.answeredLate).toBeGreaterThanOrEqual(5);
    expect(stats.queue.servedLate.interactive).toBe(5);
  });

  test('a flood is held by bounded queues: OVERLOADED instead of memory growth, nothing left hanging', async () => {
    const echo = await startEcho({
      queue: {
        capacity: { metadata: 64, interactive: 64, fsync: 64, background: 64 },
        totalCapacity: 128,
        maxWaiters: { metadata: 64, interactive: 64, fsync: 64, background: 0 },
        admitTimeoutMs: { metadata: 200, interactive: 200, fsync: 200, background: 0 },
      },
    });
    collectGarbage();
    const heapBefore = process.memoryUsage().heapUsed;
    let served = 0;
    let overloaded = 0;
    for (let wave = 0; wave < 3; wave++) {
      const classes: PriorityClass[] = ['metadata', 'interactive', 'background'];
      const wavePromises = Array.from({ length: 20_000 }, (_, i) =>
        echo.request('sleep', { ms: 0 }, { priority: classes[i % 3] }).then(
          () => void served++,
          (err: { code?: string }) => {
            if (err.code !== 'IMAP_E_OVERLOADED') throw err;
            overloaded++;
          },
        ),
      );
      await Promise.all(wavePromises);
    }
    const stats = echo.stats();
    expect(served + overloaded).toBe(60_000);
    expect(stats.queue.highWater).toBeLessThanOrEqual(128);
    expect(overloaded).toBeGreaterThan(0);
    // Background is refused at once (it never waits), so it is shed first: it fails far more often.
    expect(stats.queue.rejected.background).toBeGreaterThan(stats.queue.rejected.metadata);
    expect(stats.inFlight + stats.retrying).toBe(0);
    collectGarbage();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(32 * 1024 * 1024);
  });

  test('queued background work is shed for metadata when the queue is full', async () => {
    const echo = await startEcho({
      queue: {
        capacity: { metadata: 16, interactive: 16, fsync: 16, background: 16 },
        totalCapacity: 16,
      },
    });
    const blocked = block(echo, 150);
    const background = Array.from({ length: 16 }, (_, i) =>
      echo.request('echo', { text: `bg${i}` }, { priority: 'background' }).then(
        () => 'served',
        (err: { code?: string }) => err.code,
      ),
    );
    const metadata = Array.from({ length: 6 }, (_, i) =>
      echo.request('echo', { text: `m${i}` }, { priority: 'metadata' }),
    );
    await expect(Promise.all(metadata)).resolves.toHaveLength(6);
    await blocked;
    const outcomes = await Promise.all(background);
    expect(outcomes.filter((o) => o === 'IMAP_E_OVERLOADED')).toHaveLength(6);
    expect(outcomes.filter((o) => o === 'served')).toHaveLength(10);
    expect(echo.stats().queue.shed.background).toBe(6);
  });
});
