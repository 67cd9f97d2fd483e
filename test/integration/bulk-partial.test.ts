// POST /events/bulk?partial=true over real HTTP and a real Postgres: the valid events of a bulk
// request are stored, the invalid ones are named in the 202, and nothing else changes (the
// default stays all or nothing, the Go MVP's contract).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

let db: TestDatabase;
let durable: TestServer;
let queued: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  durable = await startTestServer(db.dsn);
  queued = await startTestServer(db.dsn, { INGEST_ACK: 'queued' });
});
afterAll(async () => {
  await durable.stop();
  await queued.stop();
  await db.close();
});

async function storedIds(ids: string[]): Promise<string[]> {
  const rows = await db.query<{ event_id: string }>(
    'SELECT event_id FROM events WHERE event_id = ANY($1) ORDER BY event_id',
    [ids],
  );
  return rows.map((r) => r.event_id);
}

/** Two valid events around two invalid ones (indexes 1 and 3). */
function mixedBatch() {
  const valid = [
    makeEvent({ event_id: `a-${Math.random()}` }),
    makeEvent({ event_id: `b-${Math.random()}` }),
  ];
  const events = [
    valid[0],
    { ...makeEvent(), timestamp: 0 },
    valid[1],
    { ...makeEvent(), user_id: '' },
  ];
  return { events, validIds: valid.map((e) => e.event_id!).sort() };
}

describe('POST /events/bulk?partial=true', () => {
  it('stores the valid events, names the invalid ones by index, and counts a resend as duplicates', async () => {
    const { events, validIds } = mixedBatch();
    const first = await postJson(`${durable.url}/events/bulk?partial=true`, { events });
    expect(first.status).toBe(202);
    expect(first.body).toEqual({
      accepted_count: 2,
      inserted: 2,
      duplicates: 0,
      rejected_count: 2,
      errors: {
        'events[1].timestamp': ['must be >= 1'],
        'events[3].user_id': ['must NOT have fewer than 1 characters'],
      },
    });
    expect(
      await storedIds([...validIds, String(events[1]!.event_id), String(events[3]!.event_id)]),
    ).toEqual(validIds);

    const again = await postJson(`${durable.url}/events/bulk?partial=1`, { events });
    expect(again.body).toMatchObject({
      accepted_count: 2,
      inserted: 0,
      duplicates: 2,
      rejected_count: 2,
    });
  });

  it('stores nothing of the same batch without partial: the default is all or nothing', async () => {
    const { events, validIds } = mixedBatch();
    const res = await postJson(`${durable.url}/events/bulk`, { events });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('validation_failed');
    expect(await storedIds(validIds)).toEqual([]);
  });

  it('answers rejected_count 0 when every event is valid', async () => {
    const events = [makeEvent(), makeEvent()];
    const res = await postJson(`${durable.url}/events/bulk?partial=true`, { events });
    expect(res.body).toEqual({ accepted_count: 2, inserted: 2, duplicates: 0, rejected_count: 0 });
  });

  it('refuses the request when no event is valid, and a partial value it does not know', async () => {
    const none = await postJson(`${durable.url}/events/bulk?partial=true`, {
      events: [{ ...makeEvent(), timestamp: 0 }],
    });
    expect(none.status).toBe(400);
    expect(none.body).toMatchObject({
      code: 'validation_failed',
      errors: { 'events[0].timestamp': ['must be >= 1'] },
    });

    const unknown = await postJson(`${durable.url}/events/bulk?partial=yes`, {
      events: [makeEvent()],
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({
      code: 'invalid_query',
      errors: { partial: ['must be true or false, given once'] },
    });
  });

  it('in queued mode answers what it queued and what it left out, then writes the valid events', async () => {
    const { events, validIds } = mixedBatch();
    const res = await postJson(`${queued.url}/events/bulk?partial=true`, { events });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted_count: 2, status: 'queued', rejected_count: 2 });
    expect(Object.keys(res.body.errors as object).sort()).toEqual([
      'events[1].timestamp',
      'events[3].user_id',
    ]);
    await waitUntil(
      'the queued events to be written',
      async () => (await storedIds(validIds)).length === 2,
      {
        timeoutMs: 10_000,
      },
    );
  });
});
