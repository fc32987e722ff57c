/** Turns any error into one stderr line (or a JSON document with --json) and a stable exit status. */
import { CommanderError } from 'commander';
import { ImapError, fromSystemError } from '../protocol/errors';

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

export function reportErrorAndExit(err: unknown, json: boolean): never {
  if (err instanceof CommanderError && (err.exitCode === 0 || err.code === 'commander.helpDisplayed')) {
    process.exit(0);
  }
  const e = toImapError(err);
  if (json) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: e.toJSON() })}\n`);
  } else {
    process.stderr.write(`imapfs: ${e.code}: ${e.message}\n  hint: ${e.hint}\n`);
  }
  if (e.code === 'IMAP_E_INTERNAL' && process.env.IMAPFS_DEBUG) {
    process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  }
  process.exit(e.exitCode);
}
