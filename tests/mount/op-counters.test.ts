/**
 * imapfs stats: an op's errno answers that are its normal "no" (lookup ENOENT, getxattr ENODATA)
 * are counted apart from failures, so `errors` means something went wrong.
 */
import { constants } from 'node:os';
import { OpCounters } from '../../src/daemon/stats';

test('expected negative answers are not errors; other errnos are', () => {
  const c = new OpCounters();
  const t = process.hrtime.bigint();
  c.record('lookup', t, constants.errno.ENOENT, 'IMAP_E_NOT_FOUND');
  c.record('lookup', t, 0);
  c.record('getxattr', t, constants.errno.ENODATA, 'IMAP_E_NO_XATTR');
  c.record('getxattr', t, constants.errno.ERANGE, 'IMAP_E_RANGE');
  c.record('read', t, constants.errno.EIO, 'IMAP_E_IO');
  c.record('unlink', t, constants.errno.ENOENT, 'IMAP_E_NOT_FOUND');
  const { ops, errorsByCode } = c.snapshot();
  expect(ops['lookup']).toMatchObject({ count: 2, errors: 0, negative: 1 });
  expect(ops['getxattr']).toMatchObject({ count: 2, errors: 1, negative: 1 });
  expect(ops['read']).toMatchObject({ count: 1, errors: 1, negative: 0 });
  expect(ops['unlink']).toMatchObject({ errors: 1, negative: 0 });
  expect(errorsByCode).toEqual({ IMAP_E_RANGE: 1, IMAP_E_IO: 1, IMAP_E_NOT_FOUND: 1 });
});
