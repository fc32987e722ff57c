/**
 * Measures the actor runtime's per-request cost: round trip main → worker → main through the
 * supervisor (queue, envelope, raw postMessage, reply), the same through a bare comlink call for
 * comparison, and ClusterSlab alloc/free. Run: npx tsx perf/actors-rtt.ts
 */
import { performance } from 'node:perf_hooks';
import { Supervisor } from '../src/actors/runtime/supervisor';
import { ClusterSlab } from '../src/actors/runtime/slab';
import { echoSpec, type EchoOps } from '../src/actors/runtime/testing/echo';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function summary(label: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b);
  const fmt = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`;
  console.log(
    `${label.padEnd(44)} p50 ${fmt(percentile(sorted, 50))}  p99 ${fmt(percentile(sorted, 99))}  (n=${samples.length})`,
  );
}

async function main(): Promise<void> {
  const supervisor = new Supervisor();
  const echo = supervisor.add<EchoOps>(echoSpec());
  await supervisor.start();
  const rounds = 20_000;

  for (let i = 0; i < 2000; i++) await echo.request('echo', { text: 'warm' });
  const sequential: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await echo.request('echo', { text: 'x' });
    sequential.push(performance.now() - start);
  }
  summary('request round trip, one at a time', sequential);

  const batchStart = performance.now();
  const batch = 2000;
  await Promise.all(
    Array.from({ length: batch }, () => echo.request('echo', { text: 'x' }, { priority: 'metadata' })),
  );
  const perOp = (performance.now() - batchStart) / batch;
  console.log(`${'pipelined (2000 at once, concurrency 4)'.padEnd(44)} ${(1 / perOp).toFixed(1)}k req/s`);

  for (let i = 0; i < 500; i++) await echo.hostStats();
  const control: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const start = performance.now();
    await echo.hostStats();
    control.push(performance.now() - start);
  }
  summary('comlink control call (stats), one at a time', control);
  await supervisor.stopAll();

  const slab = ClusterSlab.create({ id: 1, slotCount: 256 });
  const n = 1_000_000;
  for (let i = 0; i < 10_000; i++) slab.free(slab.tryAlloc());
  let start = performance.now();
  for (let i = 0; i < n; i++) slab.free(slab.tryAlloc());
  const pair = ((performance.now() - start) / n) * 1e6;
  console.log(`${'slab tryAlloc + free (uncontended)'.padEnd(44)} ${pair.toFixed(0)} ns per pair`);
  const held: number[] = [];
  start = performance.now();
  for (let r = 0; r < n / 256; r++) {
    for (let i = 0; i < 256; i++) held.push(slab.tryAlloc());
    for (const slot of held) slab.free(slot);
    held.length = 0;
  }
  console.log(
    `${'slab fill 256 then free 256'.padEnd(44)} ${(((performance.now() - start) / n) * 1e6).toFixed(0)} ns per pair`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
