/**
 * Where an archive comes from and goes to: a file, or stdin/stdout for "-". Like tar, an archive is
 * never read from or written to a terminal. Output writes resolve once the stream is done with the
 * buffer (so the writer may reuse it) and wait for the pipe to drain: memory stays flat whatever the
 * consumer's speed.
 */
import { createReadStream, createWriteStream, fstatSync, openSync, rmSync, statSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { ImapError, fromSystemError } from '../../protocol/errors';
import { CHUNK } from '../tree-copy';

export interface ArchiveInput {
  chunks: AsyncIterator<Buffer>;
  /** Bytes in the archive when known (a regular file), else 0. */
  size: number;
}

export interface ArchiveOutput {
  write(bytes: Buffer): Promise<void>;
  /** Completes the output (a file is closed). */
  close(): Promise<void>;
  /** After a failure: a partial archive file is removed (stdout cannot be taken back). */
  abort(): void;
}

export function openArchiveInput(file: string): ArchiveInput {
  if (file === '-') {
    if (process.stdin.isTTY) {
      throw new ImapError(
        'IMAP_E_USAGE',
        'refusing to read an archive from a terminal; pipe one in or name a file',
      );
    }
    const st = fstatSync(0);
    return { chunks: hostErrors(process.stdin, 'stdin'), size: st.isFile() ? st.size : 0 };
  }
  const st = host(() => statSync(file), file);
  if (st.isDirectory()) throw new ImapError('IMAP_E_IS_DIR', `archive ${file}`);
  const stream = createReadStream(file, { highWaterMark: CHUNK });
  return { chunks: hostErrors(stream, file), size: st.isFile() ? st.size : 0 };
}

export function openArchiveOutput(file: string): ArchiveOutput {
  if (file === '-') {
    if (process.stdout.isTTY) {
      throw new ImapError(
        'IMAP_E_USAGE',
        'refusing to write an archive to a terminal; redirect stdout or use -o FILE',
      );
    }
    return sink(process.stdout, 'stdout', { end: false, remove: null });
  }
  // Opened here, synchronously, so that a bad path fails at once with its own error.
  const fd = host(() => openSync(file, 'w', 0o666), file);
  return sink(createWriteStream(file, { fd, highWaterMark: CHUNK }), file, { end: true, remove: file });
}

function sink(stream: Writable, name: string, how: { end: boolean; remove: string | null }): ArchiveOutput {
  let failed: unknown = null;
  // The error also reaches the pending write's callback; without a listener it would crash the process.
  const onError = (err: unknown): void => {
    failed = err;
  };
  stream.on('error', onError);
  const write = (bytes: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      if (failed) {
        reject(fromSystemError(failed, name));
        return;
      }
      stream.write(bytes, (err) => (err ? reject(fromSystemError(failed ?? err, name)) : resolve()));
    });
  return {
    write,
    close: async () => {
      if (!how.end) {
        stream.off('error', onError);
        return;
      }
      await new Promise<void>((resolve, reject) => {
        stream.end((err?: Error | null) => (err ? reject(fromSystemError(err, name)) : resolve()));
      });
      await new Promise<void>((resolve) =>
        stream.closed ? resolve() : stream.once('close', () => resolve()),
      );
      stream.off('error', onError);
      if (failed) throw fromSystemError(failed, name);
    },
    abort: () => {
      if (!how.end) return;
      stream.destroy();
      if (how.remove) rmSync(how.remove, { force: true });
    },
  };
}

/** The stream's chunks, its errors (ENOENT, EISDIR, EIO…) as table errors naming the archive. */
async function* hostErrors(stream: Readable, name: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
  } catch (err) {
    throw fromSystemError(err, name);
  }
}

function host<T>(fn: () => T, path: string): T {
  try {
    return fn();
  } catch (err) {
    throw fromSystemError(err, path);
  }
}
