// Foreign database errors are translated once, here, into the classes the write path acts on.

/** data: the rows themselves are unstorable (retrying cannot help; split to find them).
 *  conflict: deadlock or serialization failure (retry the same statement now).
 *  unavailable: the database cannot be reached or is overloaded (retry later; the outcome of an
 *  interrupted statement is in doubt). */
export type PgErrorClass = 'data' | 'conflict' | 'unavailable';

const connectionErrnos = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
]);

export function classifyPgError(err: unknown): PgErrorClass {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code === '40P01' || code === '40001') return 'conflict';
    // 21 cardinality, 22 data exception, 23 integrity, 54 program limit (e.g. jsonb depth).
    if (/^(21|22|23|54)/.test(code)) return 'data';
    if (connectionErrnos.has(code)) return 'unavailable';
  }
  // Everything else (08 connection, 53 resources, 57 operator intervention incl. statement
  // timeout, client-side timeouts, "Connection terminated") is the database being unavailable.
  return 'unavailable';
}

export function pgErrorCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'none';
}

/** The connection died under the statement (pg_terminate_backend, a backend crash, a reset), as
 *  opposed to the database refusing or timing out: the statement can go again at once on another
 *  connection. A terminated backend rolls its transaction back, and the insert is idempotent, so
 *  a rerun never stores twice (at worst a commit whose reply was lost is reported as duplicates). */
const connectionLostCodes = new Set(['57P01', '57P02', '08003', '08006', 'ECONNRESET', 'EPIPE']);

export function isConnectionLost(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return connectionLostCodes.has(code);
  // node-postgres raises these without a code when the socket closed under a checked-out client.
  return /Connection terminated|connection error|not queryable/i.test(
    String((err as Error).message),
  );
}

/** A database still coming up (compose, a restart): refusing connections, not yet resolvable by
 *  name, in recovery (57P03), or cutting and timing out connections while it starts. Start-up
 *  waits for these; anything else (a wrong password, a missing database) stops it at once. */
const startingCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', '57P03']);

export function isDatabaseStarting(err: unknown): boolean {
  if (startingCodes.has(pgErrorCode(err))) return true;
  // pg raises timeouts and cut connections without a code ("timeout expired", "Connection
  // terminated unexpectedly"); wrapped errors carry the code only in their text.
  return /terminat|timeout|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|57P03/i.test(
    String((err as Error).message),
  );
}
