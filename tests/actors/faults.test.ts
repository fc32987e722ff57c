import { constants } from 'node:os';
import { Supervisor } from '../../src/actors/runtime/supervisor';
import type { ActorHandle } from '../../src/actors/runtime/handle';
import { FaultInjector, parseFaultCommand, validateFaultSpec } from '../../src/actors/runtime/faults';
import { echoSpec, type EchoOps } from '../../src/actors/runtime/testing/echo';
import { ImapError } from '../../src/protocol/errors';

describe('fault spec parsing (the `imapfs debug fault` words)', () => {
  test('parses every mode and option', () => {
    expect(parseFaultCommand(['journal', 'delay', '--ms', '25', '--count', '3'])).toEqual({
      kind: 'set',
      actor: 'journal',
      spec: { mode: 'delay', delayMs: 25, count: 3 },
    });
    expect(
      parseFaultCommand(['cache', 'error', '--errno', 'ENOSPC', '--probability=0.5', '--op', 'read']),
    ).toEqual({
      kind: 'set',
      actor: 'cache',
      spec: { mode: 'error', errno: constants.errno.ENOSPC, probability: 0.5, ops: ['read'] },
    });
    expect(parseFaultCommand(['scheduler', 'crash'])).toEqual({
      kind: 'set',
      actor: 'scheduler',
      spec: { mode: 'crash' },
    });
    expect(parseFaultCommand(['journal', 'crash-after', '--op', 'create'])).toEqual({
      kind: 'set',
      actor: 'journal',
      spec: { mode: 'crash-after', ops: ['create'] },
    });
    expect(parseFaultCommand(['--clear'])).toEqual({ kind: 'clear', actor: undefined });
    expect(parseFaultCommand(['journal', '--clear'])).toEqual({ kind: 'clear', actor: 'journal' });
  });

  test('refuses bad input with IMAP_E_INVALID and a reason', () => {
    const bad: string[][] = [
      ['journal'],
      ['journal', 'explode'],
      ['journal', 'delay'],
      ['journal', 'error', '--errno', 'EWHATEVER'],
      ['journal', 'crash', '--count', '0'],
      ['journal', 'crash', '--probability', '1.5'],
      ['journal', 'crash', '--bogus', '1'],
    ];
    for (const words of bad) {
      expect(() => parseFaultCommand(words)).toThrow(ImapError);
    }
    expect(() => validateFaultSpec({ mode: 'hang', ops: [] })).toThrow(/ops/);
  });

  test('count, probability and ops scope the injector', () => {
    const injector = new FaultInjector(() => 0.3);
    injector.set({ mode: 'error', errno: constants.errno.EIO, count: 2, ops: ['write'] });
    expect(injector.decide('read')).toBeUndefined();
    expect(injector.decide('write')?.mode).toBe('error');
    expect(injector.decide('write')?.mode).toBe('error');
    expect(injector.decide('write')).toBeUndefined();
    injector.set({ mode: 'delay', delayMs: 5, probability: 0.2 });
    expect(injector.decide('read')).toBeUndefined(); // 0.3 ≥ 0.2: not this time
    injector.set({ mode: 'delay', delayMs: 5, probability: 0.5 });
    expect(injector.decide('read')).toEqual({ mode: 'delay', delayMs: 5 });
    injector.clear();
    expect(injector.decide('read')).toBeUndefined();
  });
});

describe('fault hook in a real actor', () => {
  let supervisor: Supervisor;
  let echo: ActorHandle<EchoOps>;

  beforeAll(async () => {
    supervisor = new Supervisor();
    echo = supervisor.add<EchoOps>(echoSpec());
    await supervisor.start();
  });

  afterAll(async () => {
    await supervisor.stopAll();
  });

  afterEach(async () => {
    await echo.clearFault();
  });

  async function timed(): Promise<number> {
    const started = process.hrtime.bigint();
    await echo.request('echo', { text: 't' });
    return Number(process.hrtime.bigint() - started) / 1e6;
  }

  test('delay adds the stated latency, only for the matching op', async () => {
    const baseline = await timed();
    await echo.setFault({ mode: 'delay', delayMs: 120, ops: ['echo'] });
    const delayed = await timed();
    expect(delayed).toBeGreaterThanOrEqual(115);
    expect(delayed).toBeLessThan(120 + baseline + 200);
    const other = process.hrtime.bigint();
    await echo.request('sleep', { ms: 0 });
    expect(Number(process.hrtime.bigint() - other) / 1e6).toBeLessThan(100);
  });

  test('error returns the errno for exactly K messages', async () => {
    await echo.setFault({ mode: 'error', errno: constants.errno.ENOSPC, count: 3 });
    const outcomes = [];
    for (let i = 0; i < 6; i++) {
      outcomes.push(
        await echo.request('echo', { text: `${i}` }).then(
          () => 'ok',
          (err: ImapError) => `${err.code}/${err.errno}`,
        ),
      );
    }
    const enospc = `IMAP_E_NO_SPACE/${constants.errno.ENOSPC}`;
    expect(outcomes).toEqual([enospc, enospc, enospc, 'ok', 'ok', 'ok']);
    expect((await echo.hostStats()).faults.active).toBeUndefined();
  });

  test('probability p is roughly honoured (p = 0.3 over 2000 messages)', async () => {
    await echo.setFault({ mode: 'error', errno: constants.errno.EIO, probability: 0.3 });
    const outcomes = await Promise.all(
      Array.from({ length: 2000 }, () =>
        echo.request('echo', { text: 'p' }, { priority: 'interactive' }).then(
          () => false,
          () => true,
        ),
      ),
    );
    const failures = outcomes.filter(Boolean).length;
    // Binomial(2000, 0.3): mean 600, sd ≈ 20.5; ±5 sd keeps this from ever being flaky.
    expect(failures).toBeGreaterThan(600 - 103);
    expect(failures).toBeLessThan(600 + 103);
  });

  test('clear stops an unlimited fault', async () => {
    await echo.setFault({ mode: 'error', errno: constants.errno.EIO });
    await expect(echo.request('echo', { text: 'x' })).rejects.toMatchObject({ code: 'IMAP_E_IO' });
    await expect(echo.request('echo', { text: 'x' })).rejects.toMatchObject({ code: 'IMAP_E_IO' });
    await supervisor.clearFault();
    await expect(echo.request('echo', { text: 'x' })).resolves.toMatchObject({ text: 'x' });
  });

  test('an invalid spec is refused before it reaches the worker', async () => {
    await expect(echo.setFault({ mode: 'delay' })).rejects.toMatchObject({ code: 'IMAP_E_INVALID' });
  });
});
