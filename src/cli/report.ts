/** Turns any error into one stderr line (or a JSON document with --json) and a stable exit status. */
import { CommanderError } from 'commander';
import { ImapError, fromSystemError } from '../protocol/errors';
import { resultStream } from './output';

export function toImapError(err: unknown): ImapError {
  if (err instanceof ImapError) return err;
  if (err instanceof CommanderError) return new ImapError('IMAP_E_USAGE', err.message);
  if (
    err &&
    typeof err === 'object' &&
    'code' in err &&
    typeof (err as { code: unknown }).code === 'string'
  ) {
    return fromSystemError(err, err instanceof Error ? err.message : String(err));
  }
  const why = err instanceof Error ? `${err.message}` : String(err);
  return new ImapError('IMAP_E_INTERNAL', why, { cause: err });
}

/**
 * Runs `cleanup` after the failure `err`, then throws `err`. If the cleanup fails too, that is added
 * to the message of `err` (same code) rather than replacing it: the first failure is the cause.
 */
export function rethrowAfter(err: unknown, cleanup: () => void, what: string): never {
  try {
    cleanup();
  } catch (cleanupErr) {
    const e = toImapError(err);
    const why = cleanupErr instanceof Error ? cleanupErr.message : String(cleanupErr);
    const detail = `${e.detail ? `${e.detail}; ` : ''}${what} failed too: ${why}`;
    throw new ImapError(e.code, detail, { cause: err });
  }
  throw err;
}

export function reportErrorAndExit(err: unknown, json: boolean): never {
  if (err instanceof CommanderError && (err.exitCode === 0 || err.code === 'commander.helpDisplayed')) {
    process.exit(0);
  }
  const e = toImapError(err);
  if (json) {
    resultStream().write(`${JSON.stringify({ ok: false, error: e.toJSON() })}\n`);
  } else {
    process.stderr.write(`imapfs: ${e.code}: ${e.message}\n  hint: ${e.hint}\n`);
  }
  if (e.code === 'IMAP_E_INTERNAL' && process.env.IMAPFS_DEBUG) {
    process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  }
  process.exit(e.exitCode);
}
