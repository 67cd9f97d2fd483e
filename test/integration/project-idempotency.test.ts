// Idempotency is per project: the same event_id, or the same name/user/timestamp, in two projects
// is two events, so no writer can pre-claim another project's keys; within a project a key is
// stored once, as it always was, and requests with no project of their own are the default's.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEvents } from '../../src/sql/insert-events.js';
import type { IncomingEvent } from '../../src/validation/validate-events.js';
import { insertGroups } from '../../src/workers/insert-groups.js';
import { createTestDatabase, servicePool, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let db: TestDatabase;
let pool: pg.Pool;
let server: TestServer;
let shop = 0;
let victim = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = servicePool(db.dsn, 'pulse-project-idempotency-test');
  const ids = await db.query<{ id: number }>(
    "INSERT INTO projects (name) VALUES ('shop'), ('victim') RETURNING id",
  );
  shop = ids[0]!.id;
  victim = ids[1]!.id;
  server = await startTestServer(db.dsn);
});
afterAll(async () => {
  await server?.stop();
  await pool?.end();
  await db?.close();
});

/** Stored rows of that event_name, per project. */
async function rowsByProject(eventName: string): Promise<Record<number, number>> {
  const rows = await db.query<{ project_id: number; n: number }>(
    'SELECT project_id, count(*)::int AS n FROM events WHERE event_name = $1 GROUP BY 1',
    [eventName],
  );
  return Object.fromEntries(rows.map((r) => [r.project_id, r.n]));
}

function event(eventName: string, overrides: Partial<IncomingEvent> = {}): IncomingEvent {
  return {
    event_id: randomUUID(),
    event_name: eventName,
    user_id: 'u1',
    timestamp: 1_700_000_000,
    ...overrides,
  };
}

describe('idempotency per project', () => {
  it('stores the same event_id in two projects as two events, and a resend in one of them once', async () => {
    const sent = event('same-id');
    expect((await insertEvents(pool, [sent], shop)).inserted).toBe(1);
    expect((await insertEvents(pool, [sent], victim)).inserted).toBe(1);
    expect((await insertEvents(pool, [sent], shop)).inserted).toBe(0);
    expect(await rowsByProject('same-id')).toEqual({ [shop]: 1, [victim]: 1 });
  });

  it("stores a victim project's event although another project sent its name, user and timestamp first", async () => {
    const composite = {
      event_name: 'pre-claimed',
      user_id: 'victim-user',
      timestamp: 1_700_000_000,
    };
    expect((await insertEvents(pool, [composite], shop)).inserted).toBe(1);
    const stored = await insertEvents(pool, [composite, composite], victim);
    expect([stored.inserted, [...stored.outcomes]]).toEqual([1, [1, 0]]);
    expect(await rowsByProject('pre-claimed')).toEqual({ [shop]: 1, [victim]: 1 });
  });

  it('tells apart one key in two projects within one batch, and its duplicate within a project', async () => {
    const same = event('one-batch');
    const result = await insertGroups(pool, [same, same, same, same], {
      projectIds: [shop, victim, shop],
      starts: [0, 1, 3, 4],
    });
    expect(result.kind === 'done' && [...result.outcomes]).toEqual([1, 1, 0, 0]);
    expect(await rowsByProject('one-batch')).toEqual({ [shop]: 1, [victim]: 1 });
  });

  it('stores events posted without a project key in the default project, a resend once', async () => {
    const sent = makeEvent({ event_name: 'default-project' });
    const first = await postJson(`${server.url}/events`, sent);
    const again = await postJson(`${server.url}/events`, sent);
    expect([first.body, again.body]).toEqual([
      { status: 'stored', inserted: 1, duplicate: false },
      { status: 'stored', inserted: 0, duplicate: true },
    ]);
    expect(await rowsByProject('default-project')).toEqual({ 1: 1 });
    // The same event in another project is that project's own.
    expect((await insertEvents(pool, [sent], shop)).inserted).toBe(1);
  });
});
