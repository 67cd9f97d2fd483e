// The one place pg pools are made, in the main thread and in every writer thread alike.
import pg from 'pg';
import type { Logger } from 'pino';

export interface PoolOptions {
  readonly connectionString: string;
  readonly applicationName: string;
  readonly max: number;
  readonly connectTimeoutMs: number;
  /** Server-side; fires first and leaves the connection usable (57014). */
  readonly statementTimeoutMs: number;
  /** Client-side backstop; a client that hit it is wedged, and pool.query destroys it. */
  readonly queryTimeoutMs: number;
  /** Writers: synchronous_commit = on whatever the server, database or role says, so a COMMIT
   *  returns only once its WAL is flushed (on a synchronous standby too, if one is configured). */
  readonly synchronousCommit?: boolean;
}

export function createPool(options: PoolOptions, log: Pick<Logger, 'warn'>): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    application_name: options.applicationName,
    max: options.max,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    query_timeout: options.queryTimeoutMs,
    idle_in_transaction_session_timeout: options.statementTimeoutMs * 2,
    keepAlive: true,
    idleTimeoutMillis: 30_000,
    // On each new connection before its first use; a failure fails that checkout, so no statement
    // runs on a session without it. Not a startup parameter: a DSN's `options` would replace it.
    ...(options.synchronousCommit ? { verify: setSynchronousCommit } : {}),
  });
  // Without this an idle connection dropped by the server (restart, pg_terminate_backend) throws
  // an unhandled 'error' and kills the thread; with it, the pool discards the client and heals.
  pool.on('error', (err: Error & { code?: string }) => {
    log.warn(
      { pool: options.applicationName, code: err.code, err: err.message },
      'idle postgres connection lost',
    );
  });
  return pool;
}

function setSynchronousCommit(client: pg.PoolClient, done: (err?: Error) => void): void {
  client.query('SET synchronous_commit = on').then(() => done(), done);
}

/** One checked-out client. A checked-out client has no pool listener, so a connection dying
 *  between two statements would be an unhandled 'error' that kills the process; here it is
 *  recorded, and a client that failed in any way is destroyed on release rather than returned to
 *  the pool (after a client-side query_timeout it is wedged). */
export interface CheckedOutClient {
  readonly client: pg.PoolClient;
  /** The first failure recorded, by the connection or by fail(). */
  failure(): Error | undefined;
  fail(err: Error): void;
  /** Returns the client to the pool, or destroys it after a failure (`err` records one more). */
  release(err?: Error): void;
}

export async function checkOutClient(pool: pg.Pool): Promise<CheckedOutClient> {
  const client = await pool.connect();
  let failure: Error | undefined;
  const fail = (err: Error) => {
    failure ??= err;
  };
  client.on('error', fail);
  return {
    client,
    failure: () => failure,
    fail,
    release: (err) => {
      if (err) fail(err);
      client.removeListener('error', fail);
      client.release(failure);
    },
  };
}

/** Runs fn on one checked-out client (see CheckedOutClient). */
export async function withClient<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const session = await checkOutClient(pool);
  try {
    return await fn(session.client);
  } catch (err) {
    session.fail(err as Error);
    throw err;
  } finally {
    session.release();
  }
}
