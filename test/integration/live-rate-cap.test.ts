// The events stream's cap: at most LIVE_EVENTS_PER_SECOND reach a subscription (one second's
// burst, then the rate), and every event left out is reported in `dropped`, so that delivered +
// dropped equals the events committed, filtered or not.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { openLive, subscribeBoth, type LiveClient } from '../helpers/live-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

const cap = 100;
let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, { LIVE_EVENTS_PER_SECOND: String(cap) });
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

/** Posts `count` events in bulks of 50, all at once; `matching` of each bulk are named 'buy'. */
async function postQuickly(count: number, matching: number): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const bulks = Array.from({ length: count / 50 }, () =>
    Array.from({ length: 50 }, (_, i) =>
      makeEvent({ timestamp: now, event_name: i < matching ? 'buy' : 'view' }),
    ),
  );
  const answers = await Promise.all(
    bulks.map((events) => postJson(`${server.url}/events/bulk`, { events })),
  );
  expect(answers.map((a) => a.status)).toEqual(bulks.map(() => 202));
}

function tally(client: LiveClient): { delivered: number; dropped: number } {
  let delivered = 0;
  let dropped = 0;
  for (const m of client.messages) {
    if (m.type === 'event') delivered++;
    if (m.type === 'dropped') dropped += m.count as number;
  }
  return { delivered, dropped };
}

async function expectCapped(client: LiveClient, committed: number, since: number): Promise<void> {
  const counted = await waitUntil(
    `delivered + dropped to reach ${committed}`,
    () => {
      const t = tally(client);
      return t.delivered + t.dropped >= committed ? t : undefined;
    },
    { timeoutMs: 20_000 },
  );
  const lastEventAt = performance.now();
  expect(counted.delivered + counted.dropped).toBe(committed);
  expect(counted.dropped).toBeGreaterThan(0);
  expect(counted.delivered).toBeLessThanOrEqual(cap * ((lastEventAt - since) / 1000) + cap);
  // Nothing more arrives: no event is counted twice.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(tally(client).delivered + tally(client).dropped).toBe(committed);
}

it('delivers at most the cap and reports the rest as dropped, exactly', async () => {
  const client = await openLive(server.url);
  await subscribeBoth(client);
  const since = performance.now();
  await postQuickly(350, 0);
  await expectCapped(client, 350, since);
  expect(client.messages.filter((m) => m.type === 'event')).toHaveLength(tally(client).delivered);
  client.close();
});

it('counts only the events that match a filtered subscription', async () => {
  const client = await openLive(server.url);
  await subscribeBoth(client, { event_name: 'buy' });
  const since = performance.now();
  await postQuickly(400, 40);
  await expectCapped(client, 8 * 40, since);
  const names = new Set(
    client.messages
      .filter((m) => m.type === 'event')
      .map((m) => (m.event as { event_name: string }).event_name),
  );
  expect([...names]).toEqual(['buy']);
  client.close();
});
