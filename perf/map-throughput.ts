/**
 * Throughput of the map container in page cache: sequential 1 MiB-run writes and reads, random
 * single-cluster read latency, and checkpoint time after writing 256 MiB. Prints one JSON object.
 *
 *   npx tsx perf/map-throughput.ts [--side 8192] [--dir /tmp]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { CLUSTER_SIZE, MapContainer } from '../src/map';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const side = Number(arg('side', '8192'));
const dir = mkdtempSync(join(arg('dir', os.tmpdir()), 'imapfs-perf-'));
const RUN = 256; // clusters per run: 1 MiB
const MiB = 1 << 20;

function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** CPU ms of this process (user + system): robust when other jobs share the machine. */
function cpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

try {
  const path = join(dir, 'perf.png');
  const t0 = now();
  const map = MapContainer.create(path, { side });
  const mkfsMs = now() - t0;
  const runs = Math.floor(map.clusterCount / RUN);
  const buf = Buffer.alloc(RUN * CLUSTER_SIZE);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 2654435761) >>> 27;

  // First pass: fresh file pages (includes page allocation); second pass: overwrite in page cache.
  let t = now();
  for (let r = 0; r < runs; r++) map.writeClusters(r * RUN, buf, 0, RUN);
  const firstWriteMs = now() - t;
  const bytes = runs * RUN * CLUSTER_SIZE;

  t = now();
  map.checkpoint();
  const checkpointMs = now() - t;

  t = now();
  let c = cpu();
  for (let r = 0; r < runs; r++) map.writeClusters(r * RUN, buf, 0, RUN);
  const writeMs = now() - t;
  const writeCpuMs = cpu() - c;

  t = now();
  c = cpu();
  for (let r = 0; r < runs; r++) map.readClusters(r * RUN, RUN, buf, 0);
  const readMs = now() - t;
  const readCpuMs = cpu() - c;

  const t2 = now();
  c = cpu();
  map.checkpoint();
  const checkpoint2Ms = now() - t2;
  const checkpoint2CpuMs = cpu() - c;

  const one = Buffer.alloc(CLUSTER_SIZE);
  const samples: number[] = [];
  let seed = 12345;
  for (let i = 0; i < 20000; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const c = seed % map.clusterCount;
    const s = process.hrtime.bigint();
    map.readClusters(c, 1, one);
    samples.push(Number(process.hrtime.bigint() - s) / 1e3);
  }
  samples.sort((a, b) => a - b);
  const pct = (p: number): number => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];

  const tv = now();
  const report = map.verify();
  const verifyMs = now() - tv;
  map.close();

  const result = {
    side,
    mapBytes: bytes,
    mkfsMs: +mkfsMs.toFixed(1),
    seqWriteFirstTouchMBps: +(bytes / MiB / (firstWriteMs / 1000)).toFixed(0),
    seqWriteMBps: +(bytes / MiB / (writeMs / 1000)).toFixed(0),
    seqReadMBps: +(bytes / MiB / (readMs / 1000)).toFixed(0),
    seqWriteMBpsPerCpuSecond: +(bytes / MiB / (writeCpuMs / 1000)).toFixed(0),
    seqReadMBpsPerCpuSecond: +(bytes / MiB / (readCpuMs / 1000)).toFixed(0),
    checkpointAfterRewriteCpuMs: +checkpoint2CpuMs.toFixed(1),
    loadAverage1m: +os.loadavg()[0].toFixed(2),
    cpus: os.cpus().length,
    randomReadUs: { p50: +pct(0.5).toFixed(1), p99: +pct(0.99).toFixed(1) },
    checkpointAfterWritingMs: +checkpointMs.toFixed(1),
    checkpointAfterRewriteMs: +checkpoint2Ms.toFixed(1),
    verifyMs: +verifyMs.toFixed(1),
    verifyOk: report.ok,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
