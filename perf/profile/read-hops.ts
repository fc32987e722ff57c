/**
 * Where a 4 KiB read's time goes, hop by hop, without FUSE: the journal's planRead, the scheduler's
 * read, and a bare scheduler round trip (`info`), each timed alone over N random reads of a 64 MiB
 * file (the map grows to side 4096, where a cluster's 32 rows are 32 preads).
 *   npx tsx perf/profile/read-hops.ts [N=2000]
 */
import { crc32 } from 'node:zlib';
import { startDaemon } from '../../tests/cache/helpers';

const N = Number(process.argv[2] ?? 2000);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!);
}

async function main(): Promise<void> {
  const data = Buffer.alloc(64 << 20);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  const d = await startDaemon({ files: { f: data }, l1Bytes: 4096, l2Bytes: 0, prefetch: false });
  const ino = d.files.get('f')!.ino;
  const slot = d.readSlab.tryAlloc();
  const t = { plan: [] as number[], sched: [] as number[], rtt: [] as number[] };
  const now = () => Number(process.hrtime.bigint()) / 1000;
  for (let i = 0; i < N; i++) {
    const off = Math.floor(Math.random() * (data.length / 4096)) * 4096;
    let a = now();
    const plan = await d.journal.request(
      'planRead',
      { ino, offset: off, length: 4096 },
      { idempotent: true },
    );
    t.plan.push(now() - a);
    a = now();
    await d.scheduler.request('read', { plan }, { idempotent: true, data: d.readSlab.ref(slot, 0, 4096) });
    t.sched.push(now() - a);
    a = now();
    await d.scheduler.request('info', {}, { idempotent: true });
    t.rtt.push(now() - a);
    if (
      i === 0 &&
      crc32(d.readSlab.view(d.readSlab.ref(slot, 0, 4096))) !== crc32(data.subarray(off, off + 4096))
    ) {
      throw new Error('wrong bytes');
    }
  }
  for (const [k, xs] of Object.entries(t))
    console.log(`${k.padEnd(6)} p50 ${pct(xs, 50)} µs  p99 ${pct(xs, 99)} µs`);
  await d.stop();
}

void main();
