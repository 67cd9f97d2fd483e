// A commit announcement lost with a database connection delays /live, never loses events. Two
// server processes on one database, a subscriber on the second: its process stops listening for a
// while (its notification connection is terminated), then the first cannot announce for a while.
// Either way the subscriber receives every event committed meanwhile, once, and totals counting
// them, once the connection is back: a process that listens again catches up on the rows committed
// since its last catch-up by transactions it has not seen, and one that can send again sends the
// notifications it could not.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { openLive, subscribeBoth, type LiveClient } from '../helpers/live-client.js';
import { spawnServer, type ServerProcess } from '../helpers/server.js';
import { sleep, waitUntil } from '../helpers/wait-until.js';

/** Also how long a process waits before it connects again: the window the events are sent in. */
const reconnectMs = 3000;
let db: TestDatabase;
let writer: ServerProcess;
let reader: ServerProcess;
let client: LiveClient;

beforeAll(async () => {
  db = await createTestDatabase();
  // No catch-up on a timer here: what comes is what the reconnection brings.
  const env = { PG_CONNECT_TIMEOUT_MS: String(reconnectMs), LIVE_CATCH_UP_MS: '3600000' };
  [writer, reader] = await Promise.all([spawnServer(db.dsn, env), spawnServer(db.dsn, env)]);
  client = await openLive(reader.url);
  await subscribeBoth(client);
});
afterAll(async () => {
  client?.close();
  await Promise.all([writer?.stop(), reader?.stop()]);
  await db?.close();
});

const eventIds = () =>
  client.messages
    .filter((m) => m.type === 'event')
    .map((m) => (m.event as { event_id: string }).event_id);

async function listening(server: ServerProcess): Promise<boolean> {
  const rows = await db.query(
    'SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
    [db.name, `pulse-notifications-${server.pid}`],
  );
  return rows.length > 0;
}

/** Terminates the server's notification connection; resolves once it is gone. */
async function cutNotifications(server: ServerProcess): Promise<void> {
  await db.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
    [db.name, `pulse-notifications-${server.pid}`],
  );
  await waitUntil('the connection gone', async () => !(await listening(server)), {
    timeoutMs: 5000,
  });
}

async function postFive(): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  const events = Array.from({ length: 5 }, () => makeEvent({ timestamp: now }));
  for (const event of events)
    expect((await postJson(`${writer.url}/events`, event)).status).toBe(202);
  return events.map((e) => e.event_id!);
}

async function receivedOnce(expected: string[], count: number): Promise<void> {
  await waitUntil('every event on the subscriber', () => eventIds().length >= expected.length, {
    timeoutMs: reconnectMs + 10_000,
  });
  await waitUntil(
    'totals counting them',
    () =>
      client.messages.some(
        (m) => m.type === 'metrics' && (m.totals as { count: number }).count === count,
      ),
    { timeoutMs: 10_000 },
  );
  await sleep(300); // a second delivery of any of them would arrive by now
  expect(eventIds().sort()).toEqual([...expected].sort());
}

it('sends what committed while its process was not listening', async () => {
  await cutNotifications(reader);
  const sent = await postFive();
  await sleep(100); // the writer's announcement, sent to no one on the reader
  // The events went out while the reader could not hear of them.
  expect(await listening(reader)).toBe(false);
  expect(eventIds()).toEqual([]);
  await receivedOnce(sent, 5);
});

it('sends what committed while the writing process could not announce it', async () => {
  const before = eventIds();
  await cutNotifications(writer);
  const sent = await postFive();
  await sleep(100);
  expect(await listening(writer)).toBe(false);
  await receivedOnce([...before, ...sent], 10);
});
