// Releases imapfs test mounts whose daemon died (a crashed suite), so the next run starts clean.
// A live mount is left alone: it may belong to another jest run on the same machine.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');

function isAlive(mountpoint) {
  try {
    fs.statSync(mountpoint);
    return true;
  } catch (err) {
    return err.code !== 'ENOTCONN' && err.code !== 'ECONNABORTED';
  }
}

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
    if (isAlive(mountpoint)) continue;
    try {
      execFileSync('fusermount3', ['-uz', mountpoint], { stdio: 'ignore' });
      console.error(`global-teardown: unmounted stale test mount ${mountpoint}`);
    } catch (err) {
      console.error(`global-teardown: could not unmount ${mountpoint}: ${err.message}`);
    }
  }
};
