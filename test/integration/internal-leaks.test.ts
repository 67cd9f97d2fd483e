// Nothing internal in a response: the Postgres error behind a failed /readyz or a 422 goes to the
// log only, and a 404 never echoes the request's path (docs/errors.md).
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { destroyRawConnections, rawGet, rawRequest } from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startRelay } from '../helpers/tcp-relay.js';
import { waitUntil } from '../helpers/wait-until.js';

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, { INGEST_WORKERS: '1' });
});
afterAll(async () => {
  destroyRawConnections();
  await server?.stop();
  await db?.close();
});
afterEach(() => destroyRawConnections());

/** What /readyz answers with the database gone and nothing else wrong. */
const unreachableAnswer = {
  type: 'urn:pulse:problem:not_ready',
  title: 'Service is not ready',
  status: 503,
  detail: 'database: unreachable; migrations: unknown',
  code: 'not_ready',
  checks: {
    database: 'unreachable',
    migrations: 'unknown',
    writes: 'ok',
    queue: 'ok',
    serving: 'ok',
  },
};

async function awaitNotReady(url: string): Promise<unknown> {
  return waitUntil(
    'readiness to fail',
    async () => {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) });
      return res.status === 503 ? await res.json() : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
}

describe('/readyz with the database unreachable', () => {
  it('names no user and quotes no Postgres sentence when the password stops working', async () => {
    const role = `pulse_leak_${randomBytes(4).toString('hex')}`;
    await db.query(`CREATE ROLE ${role} SUPERUSER LOGIN PASSWORD 'first-password'`);
    const dsn = new URL(db.dsn);
    dsn.username = role;
    dsn.password = 'first-password';
    const outage = await startTestServer(dsn.toString(), { INGEST_WORKERS: '1' });
    try {
      await db.query(`ALTER ROLE ${role} PASSWORD 'second-password'`);
      await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
        role,
      ]);
      const answer = await awaitNotReady(outage.url);
      expect(JSON.stringify(answer)).not.toMatch(
        new RegExp(`${role}|password|authentication`, 'i'),
      );
      expect(answer).toEqual(unreachableAnswer);
    } finally {
      await outage.stop();
      await db.query(`DROP ROLE ${role}`);
    }
  });

  it('names no host or port when the database port closes', async () => {
    const relay = await startRelay(new URL(db.dsn));
    const dsn = new URL(db.dsn);
    dsn.port = String(relay.port);
    const outage = await startTestServer(dsn.toString(), { INGEST_WORKERS: '1' });
    try {
      await relay.close();
      const answer = await awaitNotReady(outage.url);
      expect(JSON.stringify(answer)).not.toMatch(
        new RegExp(`127\\.0\\.0\\.1|${relay.port}|ECONNREFUSED|connect`, 'i'),
      );
      expect(answer).toEqual(unreachableAnswer);
    } finally {
      await outage.stop();
    }
  });
});

describe('404', () => {
  it('does not echo the request path', async () => {
    const res = await rawRequest(
      Number(new URL(server.url).port),
      rawGet('/<script>alert(1)</script>'),
    );
    expect(res?.status).toBe(404);
    expect(res?.body).not.toMatch(/script|alert/i);
    expect(JSON.parse(res?.body ?? '{}')).toMatchObject({
      code: 'not_found',
      detail: 'No route for this method and path.',
    });
  });
});

describe('422 unstorable_event', () => {
  it("answers with a code and the SQLSTATE, never the database's message", async () => {
    // Validation lets this event through; a check constraint makes Postgres refuse it (23514).
    await db.query(
      "ALTER TABLE events ADD CONSTRAINT leak_probe_check CHECK (event_name <> 'refused-by-check') NOT VALID",
    );
    const res = await postJson(
      `${server.url}/events`,
      makeEvent({ event_name: 'refused-by-check' }),
    );
    expect(JSON.stringify(res.body)).not.toMatch(/leak_probe|violates|constraint|relation/i);
    expect({ status: res.status, body: res.body }).toEqual({
      status: 422,
      body: {
        type: 'urn:pulse:problem:unstorable_event',
        title: 'The database refused the events',
        status: 422,
        detail: 'The database refused these events (SQLSTATE 23514); resending them will not help.',
        code: 'unstorable_event',
      },
    });
  });
});
