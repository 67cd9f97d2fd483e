// Bounded memory: with the writers stuck behind a table lock, at most QUEUE_MAX_SIZE events wait;
// beyond that requests get 503 queue_full with Retry-After, and every request that was accepted is
// stored once the lock goes away.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { readStoredIds, sendBulk, type RequestRecord } from '../helpers/load.js';
import { jsonPost, openRaw, rawGet } from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

const queueMaxSize = 200;
const eventsPerRequest = 10;
const requests = 60; // 600 events: three times what the queue may hold

let locker: pg.Client | undefined;
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  await locker?.end().catch(() => undefined);
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function setUp(ack: 'durable' | 'queued'): Promise<{ db: TestDatabase; server: TestServer }> {
  const db = await createTestDatabase();
  cleanups.push(() => db.close());
  const server = await startTestServer(db.dsn, {
    INGEST_ACK: ack,
    QUEUE_MAX_SIZE: String(queueMaxSize),
    INGEST_WORKERS: '1',
    // Long enough that accepted durable requests wait out the lock instead of timing out (their
    // outcome would then be in doubt, and the count of accepted requests no longer exact).
    INGEST_TIMEOUT_MS: '45000',
    PG_STATEMENT_TIMEOUT_MS: '45000',
    PG_QUERY_TIMEOUT_MS: '50000',
  });
  cleanups.push(() => server.stop());
  return { db, server };
}

const queueFull = {
  status: 503,
  code: 'queue_full',
  contentType: 'application/problem+json',
  retryAfter: '1',
};
const refusalShape = (r: RequestRecord) => ({
  status: r.status,
  code: r.code,
  contentType: r.contentType,
  retryAfter: r.retryAfter,
});

describe.each(['durable', 'queued'] as const)('backpressure with INGEST_ACK=%s', (ack) => {
  it('refuses events beyond QUEUE_MAX_SIZE with 503 queue_full and stores every accepted one', async () => {
    const { db, server } = await setUp(ack);
    locker = new pg.Client({ connectionString: db.dsn });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');

    const answered: RequestRecord[] = [];
    const all = Array.from({ length: requests }, async () => {
      const events = Array.from({ length: eventsPerRequest }, () =>
        makeEvent({ event_name: 'backpressure', event_id: randomUUID() }),
      );
      const record = await sendBulk(`${server.url}/events/bulk`, events, {
        requestTimeoutMs: 55_000,
      });
      answered.push(record);
      return record;
    });

    // Nothing can commit while the table is locked, so exactly queueMaxSize / eventsPerRequest
    // requests can be accepted (durable ones stay unanswered); every other one must be refused.
    const acceptable = queueMaxSize / eventsPerRequest;
    const expectedAnswers = ack === 'durable' ? requests - acceptable : requests;
    await waitUntil(
      'every request that cannot wait to be answered',
      () => answered.length >= expectedAnswers,
      { timeoutMs: 30_000 },
    );
    expect(answered.filter((r) => r.status !== 202).map(refusalShape)).toEqual(
      Array.from({ length: requests - acceptable }, () => queueFull),
    );
    // Queued mode answers 202 on enqueue; durable mode cannot answer 202 before the commit.
    expect(answered.filter((r) => r.status === 202).length).toBe(ack === 'queued' ? acceptable : 0);

    // The queue is at its bound, not beyond it, and readiness says so.
    const ready = await fetch(`${server.url}/readyz`);
    const readyBody = (await ready.json()) as { checks: { queue: string } };
    expect([ready.status, readyBody.checks.queue]).toEqual([
      503,
      `saturated: ${queueMaxSize} of ${queueMaxSize} events`,
    ]);
    const late = await postJson(`${server.url}/events`, makeEvent({ event_name: 'backpressure' }));
    expect([late.status, late.body.code, late.headers.get('retry-after')]).toEqual([
      503,
      'queue_full',
      '1',
    ]);
    // The refusal consumes the body, unparsed, and keeps the connection: a client refused under
    // overload retries without reconnecting. Two refusals, then a health check, on one socket.
    const socket = await openRaw(Number(new URL(server.url).port));
    const body = JSON.stringify(makeEvent({ event_name: 'backpressure' }));
    const onOneConnection = [];
    for (const bytes of [
      jsonPost('/events', body),
      jsonPost('/events', body),
      rawGet('/healthz'),
    ]) {
      socket.write(bytes);
      const res = await socket.next();
      onOneConnection.push([res?.status, res?.headers.connection]);
    }
    expect(onOneConnection).toEqual([
      [503, undefined],
      [503, undefined],
      [200, undefined],
    ]);
    expect(socket.isClosed).toBe(false);
    socket.destroy();

    await locker.query('COMMIT');
    await locker.end();
    locker = undefined;
    const records = await Promise.all(all);

    const accepted = records.filter((r) => r.status === 202);
    expect(accepted.length).toBe(acceptable);
    // A queue_full refusal happens before enqueueing: those events are definitely not stored.
    const acceptedIds = new Set(accepted.flatMap((r) => r.ids));
    await waitUntil(
      'the accepted events to be written',
      async () => (await readStoredIds(db)).ids.size >= acceptedIds.size,
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect((await readStoredIds(db)).ids).toEqual(acceptedIds);

    await waitUntil(
      'readiness after the queue drained',
      async () => (await fetch(`${server.url}/readyz`)).status === 200,
      { timeoutMs: 10_000 },
    );
    const after = await postJson(`${server.url}/events`, makeEvent({ event_name: 'backpressure' }));
    expect(after.status).toBe(202);
  });
});
