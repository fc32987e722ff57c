#!/usr/bin/env node
// Top self-time functions of one or more V8 .cpuprofile files (node --cpu-prof writes one per
// thread: the main thread and every worker-thread actor). Usage:
//   node perf/profile/top-self.js [--top N] FILE.cpuprofile…
// Prints, per file and for all files together, the functions with the most self time (samples
// where the function itself was on top of the stack), with % of that file's sampled time.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const args = process.argv.slice(2);
let top = 15;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else files.push(args[i]);
}
if (files.length === 0) {
  console.error('usage: top-self.js [--top N] FILE.cpuprofile…');
  process.exit(2);
}

function short(url) {
  if (!url) return '';
  const u = url.replace(/^file:\/\//, '');
  const i = u.indexOf('/dist/');
  if (i >= 0) return u.slice(i + 1);
  const n = u.indexOf('/node_modules/');
  if (n >= 0) return u.slice(n + 1);
  return u.startsWith('node:') ? u : path.basename(u);
}

function selfTimes(file) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  // timeDeltas[i] is the time before samples[i]; attribute it to that sample's node.
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i];
    dt.set(id, (dt.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const out = new Map();
  const byFile = new Map();
  let total = 0;
  for (const [id, us] of dt) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const key = `${cf.functionName || '(anonymous)'} ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + us);
    const fk = cf.url ? short(cf.url) : cf.functionName;
    byFile.set(fk, (byFile.get(fk) ?? 0) + us);
    total += us;
  }
  return { out, byFile, total, wall: p.endTime - p.startTime };
}

const all = new Map();
const allFiles = new Map();
let allTotal = 0;
const rows = (m, total) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => `  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
for (const f of files) {
  const { out, byFile, total, wall } = selfTimes(f);
  for (const [k, us] of byFile) allFiles.set(k, (allFiles.get(k) ?? 0) + us);
  const idle = out.get('(idle) ') ?? 0;
  console.log(
    `${path.basename(f)}: ${(total / 1000).toFixed(0)} ms sampled over ${(wall / 1e6).toFixed(1)} s, ` +
      `${((100 * (total - idle)) / Math.max(1, total)).toFixed(1)}% not idle`,
  );
  console.log(rows(out, total).join('\n'));
  for (const [k, us] of out) all.set(k, (all.get(k) ?? 0) + us);
  allTotal += total;
}
if (files.length > 1) {
  const idle = all.get('(idle) ') ?? 0;
  const busy = new Map([...all].filter(([k]) => k !== '(idle) '));
  console.log(`\nall threads, busy time only (${((allTotal - idle) / 1000).toFixed(0)} ms):`);
  console.log(rows(busy, allTotal - idle).join('\n'));
  const busyFiles = new Map([...allFiles].filter(([k]) => k !== '(idle)'));
  console.log(`\nall threads, busy time by source file:`);
  console.log(rows(busyFiles, allTotal - idle).join('\n'));
}
