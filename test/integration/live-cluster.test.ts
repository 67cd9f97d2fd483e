// Two server processes on one database: a /live subscriber on either sees the commits made through
// both, because every process learns of every commit from the database.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { openLive, subscribeBoth, type LiveClient } from '../helpers/live-client.js';
import { spawnServer, type ServerProcess } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

let db: TestDatabase;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  servers.push(await spawnServer(db.dsn), await spawnServer(db.dsn));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await db?.close();
});

const eventIds = (client: LiveClient) =>
  client.messages
    .filter((m) => m.type === 'event')
    .map((m) => (m.event as { event_id: string }).event_id);

it('sends subscribers on each process the events committed through either', async () => {
  const clients = await Promise.all(servers.map((s) => openLive(s.url)));
  await Promise.all(clients.map((c) => subscribeBoth(c)));
  const now = Math.floor(Date.now() / 1000);
  const sent = servers.map(() => makeEvent({ timestamp: now }));
  for (const [i, server] of servers.entries())
    expect((await postJson(`${server.url}/events`, sent[i])).status).toBe(202);
  const expected = sent.map((e) => e.event_id).sort();
  for (const client of clients)
    await waitUntil('both events on this process', () => eventIds(client).length >= 2, {
      timeoutMs: 15_000,
    });
  expect(clients.map((c) => eventIds(c).sort())).toEqual([expected, expected]);
  const totals = await Promise.all(
    clients.map((c) =>
      waitUntil(
        'metrics counting both',
        () =>
          c.messages.find(
            (m) => m.type === 'metrics' && (m.totals as { count: number }).count === 2,
          ),
        { timeoutMs: 15_000 },
      ),
    ),
  );
  expect(totals.map((m) => m.totals)).toEqual([
    { count: 2, unique_users: 1 },
    { count: 2, unique_users: 1 },
  ]);
  for (const client of clients) client.close();
});
