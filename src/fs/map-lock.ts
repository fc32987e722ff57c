/**
 * One writer per map: `MAP.png.lock` is created exclusively ('wx') and holds the owner's pid. A lock
 * whose pid is dead is stale (a crashed CLI or daemon) and is taken over.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { ImapError, fromSystemError } from '../protocol/errors';

export function lockPathFor(mapPath: string): string {
  return `${mapPath}.lock`;
}

export interface MapLock {
  readonly path: string;
  release(): void;
}

export function acquireMapLock(mapPath: string): MapLock {
  const path = lockPathFor(mapPath);
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return makeLock(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(err, `creating ${path}`);
    }
    const owner = readOwner(path);
    if (owner !== null && owner !== process.pid && isAlive(owner)) {
      throw new ImapError('IMAP_E_MAP_LOCKED', `${mapPath} is locked by pid ${owner} (${path})`);
    }
    try {
      unlinkSync(path); // stale: its owner is gone
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(err, `removing ${path}`);
    }
  }
  throw new ImapError('IMAP_E_MAP_LOCKED', `${mapPath}: could not take ${path}`);
}

/**
 * For a thread of a process that already holds the lock (the daemon's journal worker, recovering the
 * map its main thread locked): checks that MAP.png.lock names this process and returns a lock whose
 * release does nothing, since the holder releases it. acquireMapLock must not be used there: it takes
 * a lock of its own pid over, and its release would then remove the holder's lock file.
 */
export function borrowMapLock(mapPath: string): MapLock {
  const path = lockPathFor(mapPath);
  const owner = readOwner(path);
  if (owner !== process.pid) {
    throw new ImapError(
      'IMAP_E_MAP_LOCKED',
      `${mapPath}: ${path} ${owner === null ? 'is missing' : `names pid ${owner}`}, not this process (${process.pid})`,
    );
  }
  return { path, release: () => undefined };
}

function makeLock(path: string): MapLock {
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.removeListener('exit', release);
    try {
      unlinkSync(path);
    } catch {
      // Already gone (removed by hand): nothing to release.
    }
  };
  // process.exit() from the error reporter skips finally blocks; the lock must still go.
  process.on('exit', release);
  return { path, release };
}

function readOwner(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** A zombie (killed, not yet reaped) or exiting process holds no files: its lock is stale. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // Field 3 of /proc/PID/stat is the state; the name before it is in parentheses and may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false; // gone between the two looks
  }
}
