// Unmounts any imapfs test mount a failed suite left behind, so the next run starts clean.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');

module.exports = async function globalTeardown() {
  let mounts = '';
  try {
    mounts = fs.readFileSync('/proc/mounts', 'utf8');
  } catch (err) {
    console.error(`global-teardown: cannot read /proc/mounts: ${err.message}`);
    return;
  }
  for (const line of mounts.split('\n')) {
    const [, mountpoint, type] = line.split(' ');
    if (!mountpoint || !type || !type.startsWith('fuse')) continue;
    if (!mountpoint.includes('imapfs-test-')) continue;
    try {
      execFileSync('fusermount3', ['-uz', mountpoint], { stdio: 'ignore' });
      console.error(`global-teardown: unmounted stale test mount ${mountpoint}`);
    } catch (err) {
      console.error(`global-teardown: could not unmount ${mountpoint}: ${err.message}`);
    }
  }
};
