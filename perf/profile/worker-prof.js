// Preload (node -r) that makes every worker thread write a CPU profile too. The actor runtime
// starts workers with an explicit execArgv, which drops the parent's --cpu-prof; this adds it back
// (with the same --cpu-prof-dir, or PROF_DIR). Profiling aid only: it changes no daemon code.
'use strict';
const wt = require('node:worker_threads');
const dir = process.env.PROF_DIR || process.cwd();
const interval = process.env.PROF_INTERVAL_US;
const Original = wt.Worker;
class ProfiledWorker extends Original {
  constructor(file, options = {}) {
    const extra = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
    if (interval) extra.push(`--cpu-prof-interval=${interval}`);
    super(file, { ...options, execArgv: [...(options.execArgv ?? process.execArgv), ...extra] });
  }
}
wt.Worker = ProfiledWorker;
