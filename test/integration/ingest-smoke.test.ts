import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn);
});
afterAll(async () => {
  await server.stop();
  await db.close();
});

describe('durable ingestion', () => {
  it('stores a single event before answering 202', async () => {
    const event = makeEvent();
    const res = await postJson(`${server.url}/events`, event);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ status: 'stored', inserted: 1, duplicate: false });
    const rows = await db.query('SELECT event_name, user_id FROM events WHERE event_id = $1', [
      event.event_id,
    ]);
    expect(rows).toEqual([{ event_name: 'purchase', user_id: 'u1' }]);
  });

  it('stores a large event, queued as its UTF-8 bytes, with multi-byte metadata intact', async () => {
    // Five strings of 60,000 characters, 2–4 UTF-8 bytes each: a body of about 700 KB.
    const metadata = Object.fromEntries(
      ['é', 'ж', '中', '€', '😀'].map((c, i) => [
        `k${i}`,
        c.repeat(c.length === 2 ? 30_000 : 60_000),
      ]),
    );
    const event = makeEvent({ metadata });
    expect(Buffer.byteLength(JSON.stringify(event))).toBeGreaterThan(600_000);
    const res = await postJson(`${server.url}/events`, event);
    expect(res.status).toBe(202);
    const rows = await db.query('SELECT metadata FROM events WHERE event_id = $1', [
      event.event_id,
    ]);
    expect(rows).toEqual([{ metadata }]);
  });
});
