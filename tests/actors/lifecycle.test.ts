import { createActor } from 'xstate';
import { lifecycleMachine, type LifecycleState } from '../../src/actors/runtime/lifecycle';

/** The machine alone, with no worker behind it: the transitions and the restart budget. */
function startMachine(policy = { baseDelayMs: 10, maxDelayMs: 25, maxRestarts: 2, windowMs: 60_000 }) {
  const entered: LifecycleState[] = [];
  const machine = lifecycleMachine.provide({
    actions: { announce: (_, params) => entered.push(params.state) },
  });
  const actor = createActor(machine, { input: { policy } });
  actor.start();
  return { actor, entered };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('actor lifecycle machine', () => {
  test('created → starting → ready ⇄ degraded → draining → stopped', () => {
    const { actor, entered } = startMachine();
    expect(actor.getSnapshot().value).toBe('created');
    actor.send({ type: 'START' });
    actor.send({ type: 'READY' });
    actor.send({ type: 'DEGRADE', reason: 'slow disk' });
    expect(actor.getSnapshot().context.degradedReason).toBe('slow disk');
    actor.send({ type: 'RECOVER' });
    actor.send({ type: 'STOP' });
    actor.send({ type: 'DRAINED' });
    expect(entered).toEqual(['starting', 'ready', 'degraded', 'ready', 'draining', 'stopped']);
    expect(actor.getSnapshot().status).toBe('done');
  });

  test('failed → restarting → starting after a backoff that doubles, capped', async () => {
    const { actor, entered } = startMachine({
      baseDelayMs: 10,
      maxDelayMs: 15,
      maxRestarts: 5,
      windowMs: 60_000,
    });
    actor.send({ type: 'START' });
    actor.send({ type: 'FAIL', reason: 'boom' });
    expect(actor.getSnapshot().value).toBe('restarting');
    expect(actor.getSnapshot().context.backoffMs).toBe(10);
    await sleep(30);
    expect(actor.getSnapshot().value).toBe('starting');
    actor.send({ type: 'READY' });
    actor.send({ type: 'FAIL', reason: 'boom again' });
    expect(actor.getSnapshot().context.backoffMs).toBe(15);
    expect(actor.getSnapshot().context.restarts).toBe(2);
    expect(entered).toEqual([
      'starting',
      'failed',
      'restarting',
      'starting',
      'ready',
      'failed',
      'restarting',
    ]);
    actor.send({ type: 'STOP' });
    expect(actor.getSnapshot().value).toBe('stopped');
  });

  test('after maxRestarts in the window it stays failed until a manual RESTART', async () => {
    const { actor } = startMachine();
    actor.send({ type: 'START' });
    for (let i = 0; i < 2; i++) {
      actor.send({ type: 'FAIL', reason: `failure ${i}` });
      await sleep(40);
      expect(actor.getSnapshot().value).toBe('starting');
    }
    actor.send({ type: 'FAIL', reason: 'one too many' });
    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().context.lastError).toBe('one too many');
    await sleep(40);
    expect(actor.getSnapshot().value).toBe('failed');
    actor.send({ type: 'RESTART' });
    expect(actor.getSnapshot().value).toBe('restarting');
    actor.send({ type: 'STOP' });
  });

  test('a failure while draining ends in stopped, not in a restart', () => {
    const { actor } = startMachine();
    actor.send({ type: 'START' });
    actor.send({ type: 'READY' });
    actor.send({ type: 'STOP' });
    actor.send({ type: 'FAIL', reason: 'died while draining' });
    expect(actor.getSnapshot().value).toBe('stopped');
  });
});
