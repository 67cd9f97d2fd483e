// Which database errors may be rerun at once on a fresh connection (src/sql/classify-pg-error.ts).
import { describe, expect, it } from 'vitest';
import { classifyPgError, isConnectionLost } from '../../src/sql/classify-pg-error.js';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isConnectionLost', () => {
  it.each([
    ['57P01 terminating connection due to administrator command', pgError('57P01')],
    ['57P02 crash shutdown', pgError('57P02')],
    ['08006 connection failure', pgError('08006')],
    ['ECONNRESET', pgError('ECONNRESET')],
    ['a socket closed under a checked-out client', new Error('Connection terminated unexpectedly')],
    [
      'a client that already saw its error',
      new Error('Client has encountered a connection error and is not queryable'),
    ],
  ])('is true for %s', (_, err) => {
    expect(isConnectionLost(err)).toBe(true);
  });

  it.each([
    ['ECONNREFUSED (the database is down: rerunning at once cannot help)', pgError('ECONNREFUSED')],
    ['57P03 cannot connect now', pgError('57P03')],
    ['53300 too many connections', pgError('53300')],
    ['57014 statement timeout', pgError('57014')],
    ['a client-side query timeout', new Error('Query read timeout')],
    ['40P01 deadlock (retried elsewhere)', pgError('40P01')],
    ['22P05 data', pgError('22P05')],
  ])('is false for %s', (_, err) => {
    expect(isConnectionLost(err)).toBe(false);
  });

  it('leaves the class of every lost connection "unavailable"', () => {
    expect(classifyPgError(pgError('57P01'))).toBe('unavailable');
    expect(classifyPgError(new Error('Connection terminated unexpectedly'))).toBe('unavailable');
  });
});
