// A duplicate is stored once: within one request, across batches, across writer threads and across
// server processes sharing the database; the key is event_id, else (event_name, user_id, timestamp).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson, type JsonResponse, type TestEvent } from '../helpers/events.js';
import {
  spawnServer,
  startTestServer,
  type ServerProcess,
  type TestServer,
} from '../helpers/server.js';

let db: TestDatabase;
let server: TestServer;
const processes: ServerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, { INGEST_WORKERS: '3' });
});
afterAll(async () => {
  await server.stop();
  for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await db.close();
});

/** The idempotency key as the contract defines it, in a form both sides can compute. */
function keyOf(e: TestEvent): string {
  return e.event_id !== undefined
    ? `id:${e.event_id}`
    : `composite:${e.event_name}/${e.user_id}/${e.timestamp}`;
}

/** One entry per stored row of that event_name: duplicates would show up as repeated keys. */
async function storedKeys(eventName: string): Promise<string[]> {
  const rows = await db.query<{ key: string }>(
    `SELECT CASE WHEN event_id IS NOT NULL THEN 'id:' || event_id
                 ELSE 'composite:' || event_name || '/' || user_id || '/' ||
                      extract(epoch FROM occurred_at)::bigint END AS key
     FROM events WHERE event_name = $1`,
    [eventName],
  );
  return rows.map((r) => r.key).sort();
}

async function deadlocks(): Promise<number> {
  const rows = await db.query<{ deadlocks: string }>(
    'SELECT deadlocks::text FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(rows[0]?.deadlocks ?? Number.NaN);
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Sends every body, `clients` at a time, and returns the responses in body order. */
async function sendAll(url: string, bodies: unknown[], clients: number): Promise<JsonResponse[]> {
  const responses: JsonResponse[] = new Array<JsonResponse>(bodies.length);
  let next = 0;
  const client = async () => {
    while (next < bodies.length) {
      const i = next++;
      responses[i] = await postJson(url, bodies[i]);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return responses;
}

function sumOf(responses: readonly JsonResponse[], field: string): number {
  return responses.reduce((n, r) => n + Number(r.body[field]), 0);
}

describe('idempotency', () => {
  it('stores an event repeated within one bulk request once', async () => {
    const name = 'within-request';
    const a = makeEvent({ event_name: name });
    const b = makeEvent({ event_name: name });
    const res = await postJson(`${server.url}/events/bulk`, {
      events: [a, b, { ...a, user_id: 'someone-else' }, a],
    });
    expect([res.status, res.body]).toEqual([
      202,
      { accepted_count: 4, inserted: 2, duplicates: 2 },
    ]);
    expect(await storedKeys(name)).toEqual([keyOf(a), keyOf(b)].sort());
  });

  it('stores a re-sent bulk request once and reports every event as a duplicate', async () => {
    const name = 'resent';
    const events = Array.from({ length: 50 }, () => makeEvent({ event_name: name }));
    const first = await postJson(`${server.url}/events/bulk`, { events });
    const second = await postJson(`${server.url}/events/bulk`, { events: shuffled(events) });
    const single = await postJson(`${server.url}/events`, events[7]);
    expect([first.status, first.body, second.status, second.body]).toEqual([
      202,
      { accepted_count: 50, inserted: 50, duplicates: 0 },
      202,
      { accepted_count: 50, inserted: 0, duplicates: 50 },
    ]);
    expect([single.status, single.body]).toEqual([
      202,
      { status: 'stored', inserted: 0, duplicate: true },
    ]);
    expect(await storedKeys(name)).toEqual(events.map(keyOf).sort());
  });

  it('stores overlapping concurrent requests once across writer threads', async () => {
    const name = 'across-threads';
    const deadlocksBefore = await deadlocks();
    const universe = Array.from({ length: 400 }, (_, i) =>
      i % 4 === 0
        ? makeEvent({ event_name: name, event_id: undefined, user_id: `u${i}` })
        : makeEvent({ event_name: name }),
    );
    // 60 requests of 50 distinct events each, drawn from 400: every event is sent ~7 times, by
    // requests that overlap in different orders and race each other onto three writer threads.
    const bodies = Array.from({ length: 60 }, () => ({
      events: shuffled(universe).slice(0, 50),
    }));
    const responses = await sendAll(`${server.url}/events/bulk`, bodies, 30);

    expect(responses.map((r) => r.status)).toEqual(bodies.map(() => 202));
    const sent = new Set(bodies.flatMap((b) => b.events.map(keyOf)));
    expect(await storedKeys(name)).toEqual([...sent].sort());
    // Each key reported as inserted exactly once, whichever request won it.
    expect(sumOf(responses, 'inserted')).toBe(sent.size);
    expect(sumOf(responses, 'duplicates')).toBe(60 * 50 - sent.size);
    // Batches are sorted by key, so overlapping inserts never deadlock.
    expect(await deadlocks()).toBe(deadlocksBefore);
  });

  it('stores an overlapping shuffled stream sent to two server processes once', async () => {
    const name = 'two-processes';
    const [one, two] = await Promise.all([
      spawnServer(db.dsn, { INGEST_WORKERS: '2' }),
      spawnServer(db.dsn, { INGEST_WORKERS: '2' }),
    ]);
    processes.push(one, two);
    const universe = Array.from({ length: 2000 }, (_, i) =>
      i % 10 === 0
        ? makeEvent({ event_name: name, event_id: undefined, user_id: `u${i}` })
        : makeEvent({ event_name: name }),
    );
    // Stream A: the set shuffled, bulks of 100. Stream B: shuffled differently, bulks of 37, with
    // one request in ten sent twice, and composite-key events carrying a different payload.
    const streamA = chunks(shuffled(universe), 100).map((events) => ({ events }));
    const streamB = chunks(
      shuffled(universe).map((e) => (e.event_id === undefined ? { ...e, channel: 'ios' } : e)),
      37,
    ).flatMap((events, i) => (i % 10 === 0 ? [{ events }, { events }] : [{ events }]));
    const [responsesA, responsesB] = await Promise.all([
      sendAll(`${one.url}/events/bulk`, streamA, 4),
      sendAll(`${two.url}/events/bulk`, streamB, 4),
    ]);
    const responses = [...responsesA, ...responsesB];

    expect(responses.filter((r) => r.status !== 202)).toEqual([]);
    expect(await storedKeys(name)).toEqual(universe.map(keyOf).sort());
    expect(sumOf(responses, 'inserted')).toBe(universe.length);
    const eventsSent = [...streamA, ...streamB].reduce((n, b) => n + b.events.length, 0);
    expect(sumOf(responses, 'inserted') + sumOf(responses, 'duplicates')).toBe(eventsSent);
    one.child.kill('SIGTERM');
    two.child.kill('SIGTERM');
    expect(await Promise.all([one.exited, two.exited])).toEqual([0, 0]);
  });

  it('dedupes events without event_id on (event_name, user_id, timestamp) only', async () => {
    const name = 'composite';
    const user = `user-${randomUUID()}`;
    const base = makeEvent({ event_name: name, event_id: undefined, user_id: user });
    const samePayloadElsewhere = { ...base, channel: 'email', metadata: { other: true } };
    const bulk = await postJson(`${server.url}/events/bulk`, {
      events: [
        base,
        samePayloadElsewhere,
        { ...base, timestamp: base.timestamp + 1 },
        { ...base, user_id: `${user}-2` },
        { ...base, event_name: `${name}-other` },
      ],
    });
    const again = await postJson(`${server.url}/events`, { ...base, tags: ['x'] });
    expect([bulk.status, bulk.body, again.status, again.body]).toEqual([
      202,
      { accepted_count: 5, inserted: 4, duplicates: 1 },
      202,
      { status: 'stored', inserted: 0, duplicate: true },
    ]);
    expect(await storedKeys(name)).toEqual(
      [base, { ...base, timestamp: base.timestamp + 1 }, { ...base, user_id: `${user}-2` }]
        .map(keyOf)
        .sort(),
    );
    // The first writer's payload is the one kept.
    expect(
      await db.query(
        `SELECT channel, metadata FROM events
         WHERE event_name = $1 AND user_id = $2 AND occurred_at = to_timestamp($3)`,
        [name, user, base.timestamp],
      ),
    ).toEqual([{ channel: 'web', metadata: null }]);
  });

  it('never lets an event with event_id collide with one without', async () => {
    const name = 'id-vs-composite';
    const tuple = { event_name: name, user_id: `user-${randomUUID()}`, timestamp: 1_700_000_123 };
    const withoutId = makeEvent({ ...tuple, event_id: undefined });
    const withId = makeEvent({ ...tuple });
    const withOtherId = makeEvent({ ...tuple });
    const first = await postJson(`${server.url}/events/bulk`, {
      events: [withId, withoutId, withOtherId],
    });
    const second = await postJson(`${server.url}/events/bulk`, {
      events: [withoutId, withId, { ...withOtherId, timestamp: 1_700_000_999 }],
    });
    expect([first.status, first.body, second.status, second.body]).toEqual([
      202,
      { accepted_count: 3, inserted: 3, duplicates: 0 },
      202,
      { accepted_count: 3, inserted: 0, duplicates: 3 },
    ]);
    expect(await storedKeys(name)).toEqual([withId, withoutId, withOtherId].map(keyOf).sort());
  });

  it('has the row stored by the time a durable 202 arrives', async () => {
    const name = 'durable-ack';
    const missing: string[] = [];
    const statuses: number[] = [];
    const client = async (c: number) => {
      for (let i = 0; i < 25; i++) {
        const events =
          i % 2 === 0
            ? [makeEvent({ event_name: name })]
            : Array.from({ length: 20 }, () => makeEvent({ event_name: name }));
        const res =
          events.length === 1
            ? await postJson(`${server.url}/events`, events[0])
            : await postJson(`${server.url}/events/bulk`, { events });
        statuses.push(res.status);
        if (res.status !== 202) continue;
        // Immediately, on another connection: no waiting for an asynchronous writer.
        const ids = events.map((e) => e.event_id!);
        const rows = await db.query<{ event_id: string }>(
          'SELECT event_id FROM events WHERE event_id = ANY($1::text[])',
          [ids],
        );
        const found = new Set(rows.map((r) => r.event_id));
        missing.push(...ids.filter((id) => !found.has(id)).map((id) => `client ${c}: ${id}`));
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, c) => client(c)));
    expect(statuses).toEqual(statuses.map(() => 202));
    expect(missing).toEqual([]);
  });
});
