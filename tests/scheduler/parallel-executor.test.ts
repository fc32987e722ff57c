/**
 * The scheduler's parallel executor through a real worker on a real map: overlap, per-cluster
 * ordering, neighbours' bytes under concurrent read-modify-write spans, barriers, and the map still
 * being a valid PNG afterwards (pngcheck).
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { ClusterSlab } from '../../src/actors/runtime/slab';
import { Supervisor } from '../../src/actors/runtime/supervisor';
import type { ActorHandle } from '../../src/actors/runtime/handle';
import type { ReadPlan, WritePlan } from '../../src/fs/data-path';
import { CLUSTER_SIZE } from '../../src/fs/types';
import { MapContainer } from '../../src/map';
import type { Caller } from '../../src/protocol/envelope';
import type { SchedulerOps, SchedulerOptions } from '../../src/protocol/scheduler';
import { tempDir } from '../helpers/fs-fixture';
import { actorModule, randomCluster } from '../cache/helpers';

const SLOTS = 64;
const caller: Caller = { pid: 7001, uid: 0, gid: 0 };

interface Rig {
  supervisor: Supervisor;
  scheduler: ActorHandle<SchedulerOps>;
  slab: ClusterSlab;
  map: string;
  cleanup: () => void;
}

async function startRig(options: Partial<SchedulerOptions> = {}, side = 2048): Promise<Rig> {
  const { dir, cleanup } = tempDir('imapfs-sched-');
  const map = path.join(dir, 'map.png');
  MapContainer.create(map, { side }).close();
  const slab = ClusterSlab.create({ id: 1, slotCount: SLOTS, slotSize: 1 << 20 });
  // The test hands out slots by index: take them all up front (slot i is then allocated).
  for (let i = 0; i < SLOTS; i++) slab.tryAlloc();
  const supervisor = new Supervisor({ slabs: [slab], startTimeoutMs: 60_000 });
  const scheduler = supervisor.add<SchedulerOps>({
    name: 'scheduler',
    module: actorModule('scheduler'),
    options: { mapPath: map, readOnly: false, ioDelayMs: 0, concurrency: 8, ...options },
    queue: { totalCapacity: 4096 },
  });
  await supervisor.start();
  return { supervisor, scheduler, slab, map, cleanup };
}

function writePlan(mapCluster: number, count = 1): WritePlan {
  return {
    ino: 2,
    offset: 0,
    length: count * CLUSTER_SIZE,
    fileCluster: 0,
    clusterCount: count,
    merge: [],
    runs: [{ start: mapCluster, length: count }],
  };
}

function readPlan(mapCluster: number, crc: number): ReadPlan {
  const crcs = Buffer.alloc(4);
  crcs.writeUInt32LE(crc, 0);
  return {
    ino: 2,
    offset: 0,
    length: CLUSTER_SIZE,
    fileCluster: 0,
    clusterCount: 1,
    segments: [{ fileCluster: 0, count: 1, mapCluster, crcs }],
  };
}

/** Slot i of the slab, as the scheduler sees it. */
function slot(rig: Rig, i: number): Uint8Array {
  return rig.slab.view(rig.slab.ref(i, 0, CLUSTER_SIZE));
}

function write(rig: Rig, i: number, mapCluster: number, bytes: Buffer): Promise<Uint8Array> {
  slot(rig, i).set(bytes);
  return rig.scheduler.request(
    'write',
    { plan: writePlan(mapCluster) },
    { caller, data: rig.slab.ref(i, 0, CLUSTER_SIZE) },
  );
}

async function read(rig: Rig, i: number, mapCluster: number, crc: number): Promise<Buffer> {
  await rig.scheduler.request(
    'read',
    { plan: readPlan(mapCluster, crc) },
    { caller, data: rig.slab.ref(i, 0, CLUSTER_SIZE) },
  );
  return Buffer.from(slot(rig, i));
}

describe('scheduler parallel executor', () => {
  let rig: Rig | undefined;

  afterEach(async () => {
    if (rig) {
      await rig.supervisor.stopAll();
      rig.cleanup();
      rig = undefined;
    }
  });

  test('reads of different clusters overlap: with a 20 ms device, 8 reads are in flight together', async () => {
    rig = await startRig({ ioDelayMs: 20, concurrency: 8 });
    const crcs: number[] = [];
    for (let c = 0; c < 8; c++) {
      const bytes = randomCluster(c + 1);
      await write(rig, c, c * 40, bytes);
      crcs.push(crc32(bytes));
    }
    const got = await Promise.all(crcs.map((crc, c) => read(rig as Rig, 8 + c, c * 40, crc)));
    got.forEach((bytes, c) => expect(bytes.equals(randomCluster(c + 1))).toBe(true));
    const stats = await rig.scheduler.request('stats', {});
    expect(stats.concurrency).toBe(8);
    expect(stats.peakInFlight).toBe(8);
    expect(stats.inFlight).toBe(0);
  });

  test('a lone small request runs on the scheduler thread; a lone large one goes to the pool', async () => {
    rig = await startRig({ concurrency: 8 });
    const n = 128;
    const data = Buffer.concat(Array.from({ length: n }, (_, k) => randomCluster(100 + k)));
    rig.slab.view(rig.slab.ref(0, 0, n * CLUSTER_SIZE)).set(data);
    const before = (await rig.scheduler.request('stats', {})).servedInline;
    await rig.scheduler.request(
      'write',
      { plan: writePlan(512, n) },
      { caller, data: rig.slab.ref(0, 0, n * CLUSTER_SIZE) },
    );
    const crcs = Buffer.alloc(4 * n);
    for (let k = 0; k < n; k++)
      crcs.writeUInt32LE(crc32(data.subarray(k * CLUSTER_SIZE, (k + 1) * CLUSTER_SIZE)), 4 * k);
    const plan: ReadPlan = {
      ino: 2,
      offset: 0,
      length: n * CLUSTER_SIZE,
      fileCluster: 0,
      clusterCount: n,
      segments: [{ fileCluster: 0, count: n, mapCluster: 512, crcs }],
    };
    await rig.scheduler.request('read', { plan }, { caller, data: rig.slab.ref(1, 0, n * CLUSTER_SIZE) });
    expect(Buffer.from(rig.slab.view(rig.slab.ref(1, 0, n * CLUSTER_SIZE))).equals(data)).toBe(true);
    expect((await rig.scheduler.request('stats', {})).servedInline).toBe(before); // both through the pool
    expect((await read(rig, 2, 512 + 7, crc32(randomCluster(107)))).equals(randomCluster(107))).toBe(true);
    expect((await rig.scheduler.request('stats', {})).servedInline).toBe(before + 1);
  });

  test('concurrency 1 is a serial loop', async () => {
    rig = await startRig({ ioDelayMs: 5, concurrency: 1 });
    await Promise.all([0, 1, 2, 3].map((c) => write(rig as Rig, c, c * 64, randomCluster(c))));
    expect((await rig.scheduler.request('stats', {})).peakInFlight).toBe(1);
  });

  test('writes to the same cluster apply in submission order (checked by content)', async () => {
    // A 2 ms device keeps requests in flight together (a request alone runs inline, to completion).
    rig = await startRig({ concurrency: 8, ioDelayMs: 2 });
    // 4 clusters, 12 rounds each, all submitted at once; the last write of each cluster must win.
    const targets = [3, 4, 100, 2000];
    const pending: Array<Promise<Uint8Array>> = [];
    let slotIndex = 0;
    const last = new Map<number, Buffer>();
    for (let round = 0; round < 12; round++) {
      for (const cluster of targets) {
        const bytes = randomCluster(round * 1000 + cluster);
        pending.push(write(rig, slotIndex++ % SLOTS, cluster, bytes));
        last.set(cluster, bytes);
      }
    }
    await Promise.all(pending);
    for (const [cluster, bytes] of last) {
      expect((await read(rig, 0, cluster, crc32(bytes))).equals(bytes)).toBe(true);
    }
    const stats = await rig.scheduler.request('stats', {});
    expect(stats.orderedWaits).toBeGreaterThan(0);
    expect(stats.peakInFlight).toBeGreaterThan(1);
  });

  test('concurrent writes of neighbouring clusters keep every neighbour intact', async () => {
    // Neighbouring tiles share write spans (gaps written back whole): without the container's span
    // gate, one write's read-modify-write would put back a neighbour's old bytes.
    // Side 512: an image row is 2 KiB, so the 32 rows of a tile merge into one span across the
    // neighbours' bytes between them.
    rig = await startRig({ concurrency: 8, ioDelayMs: 1 }, 512);
    const clusters = Array.from({ length: 256 }, (_, i) => i);
    const contents = clusters.map((c) => randomCluster(5000 + c));
    for (let base = 0; base < clusters.length; base += SLOTS) {
      await Promise.all(
        clusters.slice(base, base + SLOTS).map((c, k) => write(rig as Rig, k, c, contents[c] as Buffer)),
      );
    }
    for (const c of clusters) {
      const bytes = contents[c] as Buffer;
      expect((await read(rig, 0, c, crc32(bytes))).equals(bytes)).toBe(true);
    }
  });

  test('sync and checkpoint wait for writes in flight; the map is a valid PNG afterwards', async () => {
    rig = await startRig({ ioDelayMs: 10, concurrency: 8 });
    const contents = Array.from({ length: 16 }, (_, c) => randomCluster(900 + c));
    const writes = contents.map((bytes, c) => write(rig as Rig, c, 300 + c * 7, bytes));
    let writesDone = 0;
    for (const w of writes) void w.then(() => writesDone++);
    await rig.scheduler.request('sync', {}, { caller, priority: 'interactive' });
    expect(writesDone).toBe(16);
    const more = contents.map((bytes, c) => write(rig as Rig, 16 + c, 1000 + c, bytes));
    let moreDone = 0;
    for (const w of more) void w.then(() => moreDone++);
    const info = await rig.scheduler.request(
      'checkpoint',
      { generation: 1, metadata: new Uint8Array(0) },
      { caller, priority: 'interactive' },
    );
    expect(moreDone).toBe(16);
    expect(info.generation).toBeGreaterThan(0n);
    await rig.supervisor.stopAll();
    execFileSync('pngcheck', ['-q', rig.map]);
    const map = MapContainer.open(rig.map, { readOnly: true });
    try {
      expect(map.needsRecovery).toBe(false);
      const out = Buffer.alloc(CLUSTER_SIZE);
      contents.forEach((bytes, c) => {
        map.readClusters(1000 + c, 1, out, 0);
        expect(out.equals(bytes)).toBe(true);
      });
    } finally {
      map.close();
    }
  });
});
