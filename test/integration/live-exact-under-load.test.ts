// Notifications and catch-ups race under load: bulk requests from 8 clients for 6 s (many
// transactions of more than one notification each), a catch-up every second, a cap the load
// exceeds. Every event committed is delivered once or counted as dropped once: none twice, none
// missing.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { openLive, subscribeBoth } from '../helpers/live-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, {
    LIVE_EVENTS_PER_SECOND: '1000',
    LIVE_CATCH_UP_MS: '1000',
  });
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

it('delivers or counts every event committed once, with catch-ups racing notifications', async () => {
  const client = await openLive(server.url);
  await subscribeBoth(client);
  const now = Math.floor(Date.now() / 1000);
  let committed = 0;
  const until = performance.now() + 6000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < until) {
        const events = Array.from({ length: 100 }, () => makeEvent({ timestamp: now }));
        const answer = await postJson(`${server.url}/events/bulk`, { events });
        expect(answer.status).toBe(202);
        committed += 100;
      }
    }),
  );
  const tally = () => {
    const ids = client.messages
      .filter((m) => m.type === 'event')
      .map((m) => (m.event as { event_id: string }).event_id);
    const dropped = client.messages
      .filter((m) => m.type === 'dropped')
      .reduce((n, m) => n + (m.count as number), 0);
    return { ids, dropped };
  };
  await waitUntil(
    'every event delivered or dropped',
    () => tally().ids.length + tally().dropped >= committed,
    { timeoutMs: 20_000 },
  );
  await new Promise((resolve) => setTimeout(resolve, 2500)); // two more catch-ups, and reports
  const { ids, dropped } = tally();
  expect(committed).toBeGreaterThan(20_000);
  expect(dropped).toBeGreaterThan(0);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.length + dropped).toBe(committed);
  client.close();
});
