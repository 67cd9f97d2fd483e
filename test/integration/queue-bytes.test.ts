// The queue and each batch are bounded in bytes of request text, not only in events: with the
// writer stuck behind a table lock, large events fill QUEUE_MAX_BYTES long before QUEUE_MAX_SIZE,
// and once the lock goes no INSERT carries more than BATCH_MAX_BYTES.
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, type TestEvent } from '../helpers/events.js';
import { readStoredIds, sendBulk, sendBulkText } from '../helpers/load.js';
import { destroyRawConnections, jsonPost, openRaw, rawGet } from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

const queueMaxBytes = 65_536;
const batchMaxBytes = 16_384;
/** Single-event bodies of this many characters: eight fill the queue, QUEUE_MAX_SIZE is far. */
const bigBodyChars = 8000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(() => destroyRawConnections());
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface Blocked {
  readonly db: TestDatabase;
  readonly server: TestServer;
  /** Lets the writer through: the table lock goes. */
  readonly unblock: () => Promise<void>;
}

/** A queued-ack server whose writer is stuck behind an ACCESS EXCLUSIVE lock on events. */
async function startBlocked(): Promise<Blocked> {
  const db = await createTestDatabase();
  cleanups.push(() => db.close());
  const server = await startTestServer(db.dsn, {
    INGEST_ACK: 'queued',
    INGEST_WORKERS: '1',
    QUEUE_MAX_BYTES: String(queueMaxBytes),
    BATCH_MAX_BYTES: String(batchMaxBytes),
    MAX_BODY_BYTES: String(batchMaxBytes),
    PG_STATEMENT_TIMEOUT_MS: '45000',
    PG_QUERY_TIMEOUT_MS: '50000',
  });
  cleanups.push(() => server.stop());
  const locker = new pg.Client({ connectionString: db.dsn });
  await locker.connect();
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
  let locked = true;
  const unblock = async () => {
    if (!locked) return;
    locked = false;
    await locker.query('COMMIT');
    await locker.end();
  };
  cleanups.push(unblock);
  return { db, server, unblock };
}

/** One event whose JSON text is exactly `chars` characters long. */
function paddedEvent(chars: number): TestEvent {
  const event = makeEvent({ event_name: 'big', metadata: { pad: '' } });
  const pad = chars - JSON.stringify(event).length;
  return { ...event, metadata: { pad: 'x'.repeat(pad) } };
}

async function post(url: string, body: string) {
  const res = await fetch(`${url}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const answer = (await res.json()) as { code?: string };
  return { status: res.status, code: answer.code, retryAfter: res.headers.get('retry-after') };
}

/** Sends big single events one at a time until one is refused; the accepted ones. */
async function fillQueue(url: string): Promise<TestEvent[]> {
  const accepted: TestEvent[] = [];
  for (;;) {
    const event = paddedEvent(bigBodyChars);
    const answer = await post(url, JSON.stringify(event));
    if (answer.status !== 202) {
      expect(answer).toEqual({ status: 503, code: 'queue_full', retryAfter: '1' });
      return accepted;
    }
    accepted.push(event);
    expect(accepted.length).toBeLessThanOrEqual(queueMaxBytes / bigBodyChars);
  }
}

async function gauge(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/internal/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('the ingest queue bounded in bytes', () => {
  it('accepts big events up to QUEUE_MAX_BYTES, stores them, and reports the bytes it holds', async () => {
    const { db, server, unblock } = await startBlocked();
    const accepted = await fillQueue(server.url);

    expect(accepted.length).toBe(Math.floor(queueMaxBytes / bigBodyChars));
    expect(await gauge(server.url, 'pulse_queue_depth_bytes')).toBe(accepted.length * bigBodyChars);
    expect(await gauge(server.url, 'pulse_queue_depth_events')).toBe(accepted.length);
    const ready = await fetch(`${server.url}/readyz`);
    const readyBody = (await ready.json()) as { checks: { queue: string } };
    expect([ready.status, readyBody.checks.queue]).toEqual([
      503,
      `saturated: ${accepted.length * bigBodyChars} of ${queueMaxBytes} bytes`,
    ]);

    await unblock();
    const ids = new Set(accepted.map((e) => e.event_id!));
    await waitUntil(
      'the accepted events to be stored',
      async () => (await readStoredIds(db)).ids.size >= ids.size,
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect((await readStoredIds(db)).ids).toEqual(ids);
    expect(await gauge(server.url, 'pulse_queue_depth_bytes')).toBe(0);
  });

  it('refuses a body whose Content-Length overflows QUEUE_MAX_BYTES before parsing it, on an open connection', async () => {
    const { server } = await startBlocked();
    const accepted = await fillQueue(server.url);
    const room = queueMaxBytes - accepted.length * bigBodyChars;
    // Not JSON at all: a 400 would mean it was read and parsed; the queue is not full in events.
    const notJson = 'x'.repeat(room + 1);
    const socket = await openRaw(Number(new URL(server.url).port));
    const answers = [];
    for (const bytes of [jsonPost('/events', notJson), rawGet('/healthz')]) {
      socket.write(bytes);
      const res = await socket.next();
      const problem = JSON.parse(res?.body ?? '{}') as { code?: string };
      answers.push([res?.status, problem.code, res?.headers['retry-after']]);
    }
    expect(answers).toEqual([
      [503, 'queue_full', '1'],
      [200, undefined, undefined],
    ]);
    expect(socket.isClosed).toBe(false);
    // Within the room left, the same body is read and refused for what it is.
    const fits = await post(server.url, 'x'.repeat(room));
    expect(fits.code).toBe('invalid_json');
  });

  it('holds room for a body while it is read, and gives it back once read', async () => {
    const { server } = await startBlocked();
    const accepted = await fillQueue(server.url);
    const room = queueMaxBytes - accepted.length * bigBodyChars;
    // Half of a body that takes all the room left: its Content-Length is held while it arrives.
    const slow = await openRaw(Number(new URL(server.url).port));
    const slowBody = 'y'.repeat(room);
    const slowBytes = jsonPost('/events', slowBody);
    slow.write(slowBytes.subarray(0, slowBytes.length - room / 2));
    await waitUntil(
      'the slow body to hold its room',
      async () => (await gauge(server.url, 'pulse_queue_depth_bytes')) === queueMaxBytes,
      { timeoutMs: 10_000 },
    );
    expect(await post(server.url, 'z')).toEqual({
      status: 503,
      code: 'queue_full',
      retryAfter: '1',
    });
    slow.write(slowBytes.subarray(slowBytes.length - room / 2));
    expect((await slow.next())?.status).toBe(400);
    expect((await post(server.url, 'z')).code).toBe('invalid_json');
  });

  it('counts a gzip body by the text it inflates to', async () => {
    const { server } = await startBlocked();
    const accepted = await fillQueue(server.url);
    const room = queueMaxBytes - accepted.length * bigBodyChars;
    const event = paddedEvent(room + 1);
    const gzipped = gzipSync(JSON.stringify(event));
    expect(gzipped.length).toBeLessThan(room);
    const res = await fetch(`${server.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipped,
    });
    const body = (await res.json()) as { code?: string };
    expect([res.status, body.code]).toEqual([503, 'queue_full']);
    expect(await gauge(server.url, 'pulse_queue_depth_bytes')).toBe(accepted.length * bigBodyChars);
  });

  it('writes no batch of more than BATCH_MAX_BYTES, and never splits a request', async () => {
    const { db, server, unblock } = await startBlocked();
    // Twelve bulk requests of two events, 5,000 characters each: 60,000 in all, at most three
    // requests to a batch.
    const requests: { ids: string[]; chars: number }[] = [];
    for (let i = 0; i < 12; i++) {
      const events = [paddedEvent(2480), paddedEvent(2480)];
      const chars = JSON.stringify({ events }).length;
      const record = await sendBulk(`${server.url}/events/bulk`, events, {
        requestTimeoutMs: 10_000,
      });
      expect(record.status).toBe(202);
      requests.push({ ids: events.map((e) => e.event_id!), chars });
    }
    await unblock();
    await waitUntil(
      'every request to be stored',
      async () => (await readStoredIds(db)).ids.size >= 24,
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    // events.txid is the inserting transaction: one batch, one transaction.
    const rows = await db.query<{ event_id: string; txid: string }>(
      'SELECT event_id, txid::text FROM events',
    );
    const txidOf = new Map(rows.map((r) => [r.event_id, r.txid]));
    const charsByTxid = new Map<string, number>();
    for (const r of requests) {
      const txids = new Set(r.ids.map((id) => txidOf.get(id)));
      expect(txids.size).toBe(1);
      const txid = [...txids][0]!;
      charsByTxid.set(txid, (charsByTxid.get(txid) ?? 0) + r.chars);
    }
    const total = requests.reduce((n, r) => n + r.chars, 0);
    expect(charsByTxid.size).toBeGreaterThanOrEqual(Math.ceil(total / batchMaxBytes));
    expect([...charsByTxid.values()].filter((chars) => chars > batchMaxBytes)).toEqual([]);
  });

  it('refuses a partial bulk whose kept events re-serialise past BATCH_MAX_BYTES with 413', async () => {
    const { server } = await startBlocked();
    // JSON.stringify writes 1e-6 as 0.000001: the kept event's text grows past what was sent.
    const kept = makeEvent({ event_name: 'grows' });
    const numbers = Array.from({ length: 2000 }, () => '1e-6').join(',');
    const body = `{"events":[${JSON.stringify({ ...kept, metadata: {} }).replace('"metadata":{}', `"metadata":{"n":[${numbers}]}`)},{"event_name":5}]}`;
    expect(body.length).toBeLessThan(batchMaxBytes);
    const record = await sendBulkText(
      `${server.url}/events/bulk?partial=true`,
      body,
      [kept.event_id!],
      { requestTimeoutMs: 10_000 },
    );
    expect([record.status, record.code]).toEqual([413, 'payload_too_large']);
  });
});
