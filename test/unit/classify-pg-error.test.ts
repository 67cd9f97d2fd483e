// How database errors are classified (src/sql/classify-pg-error.ts): which may be rerun at once on
// a fresh connection, and which mean a database still coming up that start-up waits for.
import { describe, expect, it } from 'vitest';
import {
  classifyPgError,
  isConnectionLost,
  isDatabaseStarting,
} from '../../src/sql/classify-pg-error.js';

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

describe('isDatabaseStarting', () => {
  it.each([
    ['ECONNREFUSED', pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    [
      'ENOTFOUND (a compose service not in DNS yet)',
      pgError('ENOTFOUND', 'getaddrinfo ENOTFOUND db'),
    ],
    ['EAI_AGAIN', pgError('EAI_AGAIN', 'getaddrinfo EAI_AGAIN db')],
    [
      '57P03 the database system is starting up',
      pgError('57P03', 'the database system is starting up'),
    ],
    ['a connection cut while it starts', new Error('Connection terminated unexpectedly')],
    [
      '57P01 terminating connection',
      pgError('57P01', 'terminating connection due to administrator command'),
    ],
    ['a connect timeout', new Error('timeout expired')],
    ['a timeout in any case', new Error('Connection terminated due to connection Timeout')],
    [
      'a wrapped refusal that names the code only in its text',
      new Error('connect ECONNREFUSED ::1:5432'),
    ],
    [
      'a wrapped 57P03 that names the code only in its text',
      new Error('error 57P03 from the server'),
    ],
    ['a wrapped ENOTFOUND', new Error('getaddrinfo ENOTFOUND postgres')],
    ['a wrapped EAI_AGAIN', new Error('getaddrinfo EAI_AGAIN postgres')],
  ])('is true for %s', (_, err) => {
    expect(isDatabaseStarting(err)).toBe(true);
  });

  it.each([
    ['28P01 a wrong password', pgError('28P01', 'password authentication failed for user "pulse"')],
    ['3D000 a missing database', pgError('3D000', 'database "pulse" does not exist')],
    ['42501 a missing privilege', pgError('42501', 'permission denied for schema public')],
    ['53300 too many connections', pgError('53300', 'sorry, too many clients already')],
    ['an error without a code or a known text', new Error('something else')],
  ])('is false for %s', (_, err) => {
    expect(isDatabaseStarting(err)).toBe(false);
  });
});
