/** fsync helpers shared by the map file and its intent log, with errors mapped to IMAP_E_* codes. */
import { closeSync, fsync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { fromSystemError } from '../protocol/errors';

export function syncFile(fd: number, path: string): void {
  try {
    fsyncSync(fd);
  } catch (err) {
    throw fromSystemError(err, `fsync ${path}`);
  }
}

export function syncFileAsync(fd: number, path: string): Promise<void> {
  return new Promise((resolve, reject) =>
    fsync(fd, (err) => (err ? reject(fromSystemError(err, `fsync ${path}`)) : resolve())),
  );
}

/** fsync the directory so a create or rename survives a crash. */
export function syncDir(path: string): void {
  let dfd: number;
  try {
    dfd = openSync(dirname(path), 'r');
  } catch (err) {
    throw fromSystemError(err, `opening the directory of ${path}`);
  }
  try {
    fsyncSync(dfd);
  } catch (err) {
    throw fromSystemError(err, `fsync the directory of ${path}`);
  } finally {
    closeSync(dfd);
  }
}
