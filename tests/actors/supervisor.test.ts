import { Supervisor } from '../../src/actors/runtime/supervisor';
import type { ActorHandle } from '../../src/actors/runtime/handle';
import type { LifecycleState } from '../../src/actors/runtime/lifecycle';
import { echoSpec, type EchoOps } from '../../src/actors/runtime/testing/echo';
import { ImapError } from '../../src/protocol/errors';

/** Records every state an actor enters, with the time it entered it. */
function recordStates(handle: ActorHandle<EchoOps>): Array<{ state: LifecycleState; at: number }> {
  const log: Array<{ state: LifecycleState; at: number }> = [];
  handle.onStateChange((state) => log.push({ state, at: Date.now() }));
  return log;
}

async function settle<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: ImapError }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    if (!(error instanceof ImapError)) throw error;
    return { ok: false, error };
  }
}

describe('Supervisor with a real echo worker', () => {
  let supervisor: Supervisor;

  afterEach(async () => {
    await supervisor.stopAll();
  });

  test('lifecycle: created → starting → ready → draining → stopped', async () => {
    supervisor = new Supervisor();
    const echo = supervisor.add<EchoOps>(echoSpec());
    const log = recordStates(echo);
    expect(echo.state).toBe('created');
    await supervisor.start();
    await expect(echo.request('echo', { text: 'hello' })).resolves.toMatchObject({
      text: 'hello',
      attempt: 1,
    });
    await supervisor.stopAll();
    expect(log.map((entry) => entry.state)).toEqual(['starting', 'ready', 'draining', 'stopped']);
    await expect(echo.request('echo', { text: 'late' })).rejects.toMatchObject({
      code: 'IMAP_E_ACTOR_STOPPED',
    });
  });

  test('ready ⇄ degraded as the actor reports it, still serving', async () => {
    supervisor = new Supervisor();
    const echo = supervisor.add<EchoOps>(echoSpec());
    await supervisor.start();
    await echo.request('setHealth', { degraded: true, reason: 'disk slow' });
    await waitUntil(() => echo.state === 'degraded');
    expect(echo.stats().degradedReason).toBe('disk slow');
    await expect(echo.request('echo', { text: 'still here' })).resolves.toMatchObject({ text: 'still here' });
    await echo.request('setHealth', { degraded: false });
    await waitUntil(() => echo.state === 'ready');
  });

  test('stopAll serves what was queued before stopping', async () => {
    supervisor = new Supervisor();
    const echo = supervisor.add<EchoOps>(echoSpec());
    await supervisor.start();
    const queued = Array.from({ length: 20 }, () => echo.request('sleep', { ms: 5 }));
    await supervisor.stopAll();
    const results = await Promise.all(queued);
    expect(results.every((result) => result.slept === 5)).toBe(true);
  });

  test('crash: worker dies, restarts with backoff; idempotent in-flight retried, others get ACTOR_FAILED', async () => {
    supervisor = new Supervisor({
      restart: { baseDelayMs: 100, maxDelayMs: 1000, maxRestarts: 10, windowMs: 60_000 },
    });
    const echo = supervisor.add<EchoOps>(echoSpec());
    const log = recordStates(echo);
    await supervisor.start();

    // Three long requests are in flight when the fourth (the actor's concurrency is 4) crashes the worker.
    const idempotentSleeps = [1, 2].map(() =>
      settle(echo.request('sleep', { ms: 300 }, { idempotent: true })),
    );
    const plainSleep = settle(echo.request('sleep', { ms: 300 }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await echo.setFault({ mode: 'crash', count: 1 });
    const crasher = settle(echo.request('echo', { text: 'boom' }));
    const idempotentEcho = settle(echo.request('echo', { text: 'again' }, { idempotent: true }));

    const [i1, i2, plain, crash, echoed] = await Promise.all([
      ...idempotentSleeps,
      plainSleep,
      crasher,
      idempotentEcho,
    ]);
    expect(i1).toMatchObject({ ok: true, value: { slept: 300 } });
    expect(i2).toMatchObject({ ok: true, value: { slept: 300 } });
    for (const outcome of [plain, crash]) {
      expect(outcome!.ok).toBe(false);
      if (!outcome!.ok) {
        expect(outcome!.error.code).toBe('IMAP_E_ACTOR_FAILED');
        expect(outcome!.error.errno).toBe(5); // EIO
      }
    }
    // Queued behind the crash, it was never in flight: it simply ran on the new worker.
    expect(echoed).toMatchObject({ ok: true, value: { text: 'again' } });

    const states = log.map((entry) => entry.state);
    expect(states).toEqual(['starting', 'ready', 'failed', 'restarting', 'starting', 'ready']);
    const failedAt = log[2]!.at;
    const restartedAt = log[4]!.at;
    expect(restartedAt - failedAt).toBeGreaterThanOrEqual(95);
    const stats = echo.stats();
    expect(stats.restarts).toBe(1);
    expect(stats.retried).toBe(2);
    expect(stats.failedByActor).toBe(2);
    expect(stats.inFlight).toBe(0);
    expect(stats.lastError).toMatch(/InjectedCrash/);

    // The second crash in the window waits twice as long.
    await echo.setFault({ mode: 'crash', count: 1 });
    await settle(echo.request('echo', { text: 'boom again' }));
    await waitUntil(() => echo.state === 'ready');
    const second = log.slice(6);
    expect(second.map((entry) => entry.state)).toEqual(['failed', 'restarting', 'starting', 'ready']);
    expect(second[2]!.at - second[0]!.at).toBeGreaterThanOrEqual(195);
    expect(echo.stats().restarts).toBe(2);
  });

  test('an idempotent request that kills every worker is failed after maxAttempts, not retried forever', async () => {
    supervisor = new Supervisor({
      restart: { baseDelayMs: 10, maxDelayMs: 20, maxRestarts: 10, windowMs: 60_000 },
    });
    const echo = supervisor.add<EchoOps>(
      echoSpec({ maxAttempts: 3, fault: { mode: 'crash', ops: ['echo'] } }),
    );
    await supervisor.start();
    const outcome = await settle(echo.request('echo', { text: 'poison' }, { idempotent: true }));
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.error.detail).toMatch(/failed on 3 workers/);
    expect(echo.stats().restarts).toBe(3);
  });

  test('a spawn fault with a count fires that many times in all, not once per new worker', async () => {
    supervisor = new Supervisor({
      restart: { baseDelayMs: 10, maxDelayMs: 20, maxRestarts: 10, windowMs: 60_000 },
    });
    // Re-armed in every worker; a per-worker count would crash each retry too and exhaust maxAttempts.
    const echo = supervisor.add<EchoOps>(
      echoSpec({ maxAttempts: 3, fault: { mode: 'crash', count: 2, ops: ['echo'] } }),
    );
    await supervisor.start();
    await expect(echo.request('echo', { text: 'third time' }, { idempotent: true })).resolves.toMatchObject({
      text: 'third time',
      attempt: 3,
    });
    expect(echo.stats().restarts).toBe(2);
    // Spent: later requests, on the same worker or on a new one, are not faulted.
    await expect(echo.request('echo', { text: 'after' })).resolves.toMatchObject({ attempt: 1 });
    expect((await echo.hostStats()).faults.active).toBeUndefined();
  });

  test('hang: lost heartbeat is detected, worker killed and restarted, idempotent request answered', async () => {
    supervisor = new Supervisor({
      heartbeat: { intervalMs: 20, timeoutMs: 300 },
      restart: { baseDelayMs: 20, maxDelayMs: 100, maxRestarts: 5, windowMs: 60_000 },
    });
    const echo = supervisor.add<EchoOps>(echoSpec());
    await supervisor.start();
    await echo.setFault({ mode: 'hang', count: 1 });
    const started = Date.now();
    const answer = await echo.request('echo', { text: 'are you there' }, { idempotent: true });
    const elapsed = Date.now() - started;
    expect(answer).toMatchObject({ text: 'are you there', attempt: 2 });
    expect(elapsed).toBeGreaterThanOrEqual(300);
    expect(elapsed).toBeLessThan(5000);
    expect(echo.stats().lastError).toMatch(/no heartbeat/);
    expect(echo.stats().restarts).toBe(1);
  });

  test('restart-loop protection: after maxRestarts in the window the actor stays failed and fails fast', async () => {
    supervisor = new Supervisor({
      restart: { baseDelayMs: 10, maxDelayMs: 40, maxRestarts: 3, windowMs: 60_000 },
    });
    const echo = supervisor.add<EchoOps>(echoSpec({ options: { failInit: true } }));
    const log = recordStates(echo);
    const queued = settle(echo.request('echo', { text: 'waiting for a worker' }));
    await expect(supervisor.start()).rejects.toMatchObject({ code: 'IMAP_E_ACTOR_FAILED' });
    expect(echo.state).toBe('failed');
    expect(echo.stats().restarts).toBe(3);
    expect(log.filter((entry) => entry.state === 'starting')).toHaveLength(4);
    const outcome = await queued;
    expect(outcome.ok).toBe(false);
    const started = Date.now();
    const fast = await settle(echo.request('echo', { text: 'now' }));
    expect(Date.now() - started).toBeLessThan(50);
    expect(fast.ok).toBe(false);
    if (!fast.ok) {
      expect(fast.error.code).toBe('IMAP_E_ACTOR_FAILED');
      expect(fast.error.detail).toMatch(/gave up after 3 restarts.*init failed: init told to fail/);
    }
  });

  test('stats() reports per-actor state, restarts, in-flight and queue depth', async () => {
    supervisor = new Supervisor();
    supervisor.add<EchoOps>(echoSpec({ name: 'one' }));
    supervisor.add<EchoOps>(echoSpec({ name: 'two' }));
    await supervisor.start();
    const pending = Array.from({ length: 10 }, () => supervisor.request('one', 'sleep', { ms: 50 }));
    const stats = supervisor.stats();
    expect(stats.actors.map((a) => [a.name, a.state])).toEqual([
      ['one', 'ready'],
      ['two', 'ready'],
    ]);
    expect(stats.inFlight).toBe(4);
    expect(stats.queued).toBe(6);
    await Promise.all(pending);
    expect(supervisor.stats().actors[0]!.completed).toBe(10);
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > giveUpAt) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
