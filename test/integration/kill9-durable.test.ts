// kill -9 under load in durable mode: every event that got a 202 is stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { cleanVerdict, judge, OutcomeLog, readStoredIds, startLoad } from '../helpers/load.js';
import { spawnServer, type ServerProcess } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

let db: TestDatabase;
const spawned: ServerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  for (const server of spawned) if (server.child.exitCode === null) server.child.kill('SIGKILL');
  await db.close();
});

/** Killed servers' backends finish (commit or roll back) on their own; read only after they have. */
async function waitForWriterBackendsToGo(): Promise<void> {
  await waitUntil(
    'the killed server’s connections to close',
    async () => {
      const rows = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE 'pulse-%'`,
      );
      return rows[0]?.n === 0;
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
}

describe('kill -9 in durable mode', () => {
  it('stores every acknowledged event when the server is killed mid-load, twice', async () => {
    const log = new OutcomeLog();
    for (let round = 0; round < 2; round++) {
      const server = await spawnServer(db.dsn, { INGEST_ACK: 'durable', INGEST_WORKERS: '2' });
      spawned.push(server);
      const ackedBefore = log.count((r) => r.outcome === 'ok');
      const load = startLoad({
        url: `${server.url}/events/bulk`,
        log,
        clients: 6,
        eventsPerRequest: 20,
        maxRequests: 3000,
        maxDurationMs: 20_000,
        requestTimeoutMs: 10_000,
        pauseMs: 2,
      });
      // Kill once the load is well under way, so requests are in every stage of the write path.
      await waitUntil(
        '200 acknowledged requests',
        () => log.count((r) => r.outcome === 'ok') - ackedBefore >= 200,
        { timeoutMs: 20_000 },
      );
      server.child.kill('SIGKILL');
      expect(await server.exited).toBe('SIGKILL');
      load.stop();
      await load.done;
      await waitForWriterBackendsToGo();
    }

    // Requests answered by the dead server's socket closing are network errors: in doubt, not lost.
    expect(log.count((r) => r.status !== 202 && r.status !== 0)).toBe(0);
    expect(log.ids('ok').size).toBeGreaterThanOrEqual(2 * 200 * 20);
    expect(judge(log, await readStoredIds(db))).toEqual(cleanVerdict);
  });
});
