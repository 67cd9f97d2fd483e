// GET /live over a real WebSocket: every message type, every error with its code and close code,
// the per-process client cap, project isolation and metrics totals equal to GET /metrics.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi, createProjectWithKeys } from '../helpers/admin-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { getJson, makeEvent, postJson } from '../helpers/events.js';
import { openLive, subscribeBoth, type LiveClient } from '../helpers/live-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

const root = `root-${randomUUID()}`;
let db: TestDatabase;
let server: TestServer;
let shop: Awaited<ReturnType<typeof createProjectWithKeys>>;
let blog: Awaited<ReturnType<typeof createProjectWithKeys>>;
let revoked: string;
const clients: LiveClient[] = [];

/** A read key of shop's, revoked at once. */
async function revokedKey(): Promise<string> {
  const made = await callApi(server.url, 'POST', `/admin/projects/${shop.id}/keys`, root, {
    scope: 'read',
  });
  await callApi(server.url, 'DELETE', `/admin/keys/${made.body.id as string}`, root);
  return made.body.key as string;
}

beforeAll(async () => {
  db = await createTestDatabase();
  // No limit on failed keys: the refusals below are such failures.
  const env = { API_KEYS: root, AUTH_FAILURES_PER_MIN: '0', LIVE_MAX_CLIENTS: '6' };
  server = await startTestServer(db.dsn, { ...env, RATE_LIMIT_METRICS_PER_MIN: '0' });
  [shop, blog] = [
    await createProjectWithKeys(server.url, root, 'shop'),
    await createProjectWithKeys(server.url, root, 'blog'),
  ];
  revoked = await revokedKey();
});
afterAll(async () => {
  for (const client of clients) client.close();
  await server?.stop();
  await db?.close();
});

async function live(): Promise<LiveClient> {
  const client = await openLive(server.url);
  clients.push(client);
  return client;
}

const now = () => Math.floor(Date.now() / 1000);

async function post(key: string, events: unknown[]): Promise<void> {
  const answer = await postJson(`${server.url}/events/bulk`, { events }, { 'x-api-key': key });
  expect(answer.status).toBe(202);
}

describe('GET /live refuses', () => {
  const refusals: [string, () => unknown, string][] = [
    ['text that is not JSON', () => '{"type":', 'invalid_message'],
    [
      'an unknown type',
      () => ({ type: 'hello', stream: 'events', key: shop.read }),
      'invalid_message',
    ],
    [
      'a bad stream',
      () => ({ type: 'subscribe', stream: 'logs', key: shop.read }),
      'invalid_message',
    ],
    [
      'a window under a minute',
      () => ({ type: 'subscribe', stream: 'metrics', key: shop.read, window_seconds: 59 }),
      'invalid_message',
    ],
    [
      'a window that is not an integer',
      () => ({ type: 'subscribe', stream: 'metrics', key: shop.read, window_seconds: 60.5 }),
      'invalid_message',
    ],
    [
      'an unknown field',
      () => ({ type: 'subscribe', stream: 'events', key: shop.read, extra: 1 }),
      'invalid_message',
    ],
    [
      'an empty event_name',
      () => ({ type: 'subscribe', stream: 'events', key: shop.read, event_name: '' }),
      'invalid_message',
    ],
    ['a missing key', () => ({ type: 'subscribe', stream: 'events' }), 'unauthorized'],
    [
      'a wrong key',
      () => ({ type: 'subscribe', stream: 'events', key: `pk_r_${randomUUID()}` }),
      'unauthorized',
    ],
    [
      'a revoked key',
      () => ({ type: 'subscribe', stream: 'events', key: revoked }),
      'unauthorized',
    ],
    [
      'a write-only key',
      () => ({ type: 'subscribe', stream: 'metrics', key: shop.write }),
      'insufficient_scope',
    ],
  ];
  for (const [what, message, code] of refusals) {
    it(`${what} with ${code} and close 1008`, async () => {
      const client = await live();
      client.send(message());
      expect(await client.closed).toBe(1008);
      expect(client.messages).toEqual([
        { type: 'error', code, detail: expect.any(String) as string },
      ]);
    });
  }

  it('a binary frame with invalid_message and close 1008', async () => {
    const client = await live();
    client.send(Buffer.from('{}'));
    expect(await client.closed).toBe(1008);
    expect(client.messages[0]).toMatchObject({ type: 'error', code: 'invalid_message' });
  });

  it('a message over LIVE_MAX_MESSAGE_BYTES with invalid_message and close 1008', async () => {
    const client = await live();
    client.send({ type: 'subscribe', stream: 'events', key: shop.read, channel: 'x'.repeat(5000) });
    expect(await client.closed).toBe(1008);
    expect(client.messages[0]).toMatchObject({ type: 'error', code: 'invalid_message' });
  });

  it('a second subscription to the same stream with invalid_message and close 1008', async () => {
    const client = await live();
    client.send({ type: 'subscribe', stream: 'metrics', key: shop.read });
    await client.next((m) => m.type === 'metrics');
    client.send({ type: 'subscribe', stream: 'metrics', key: shop.read, window_seconds: 3600 });
    expect(await client.closed).toBe(1008);
    expect(client.messages.at(-1)).toMatchObject({ type: 'error', code: 'invalid_message' });
  });

  it('a connection over LIVE_MAX_CLIENTS with close 1013', async () => {
    const open = await Promise.all(Array.from({ length: 6 }, () => live()));
    const over = await live();
    expect(await over.closed).toBe(1013);
    expect(over.messages).toEqual([
      { type: 'error', code: 'too_many_clients', detail: expect.any(String) as string },
    ]);
    for (const client of open) client.close();
    await Promise.all(open.map((client) => client.closed));
  });
});

describe('GET /live streams', () => {
  it("sends each event of the key's project committed after the subscription, as export writes it", async () => {
    const client = await live();
    await subscribeBoth(client, { key: shop.read });
    const sent = [
      makeEvent({ timestamp: now(), metadata: { plan: 'pro', seats: [1, null] }, tags: ['a'] }),
      makeEvent({ timestamp: now(), channel: undefined, event_name: 'signup' }),
    ];
    await post(shop.write, sent);
    await waitUntil(
      'both events',
      () => client.messages.filter((m) => m.type === 'event').length >= 2,
      {
        timeoutMs: 10_000,
      },
    );
    const exported = (
      await (
        await fetch(`${server.url}/events/export?from=${now() - 60}`, {
          headers: { 'x-api-key': shop.read },
        })
      ).text()
    )
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const received = client.messages.filter((m) => m.type === 'event').map((m) => m.event);
    const byId = (list: unknown[]) =>
      [...list].sort((a, b) =>
        String((a as { event_id: string }).event_id).localeCompare(
          String((b as { event_id: string }).event_id),
        ),
      );
    expect(byId(received)).toEqual(
      byId(exported.filter((e) => sent.some((s) => s.event_id === e.event_id))),
    );
  });

  it('applies the event_name and channel filters to events', async () => {
    const client = await live();
    await subscribeBoth(client, { key: shop.read, event_name: 'buy', channel: 'app' });
    const wanted = makeEvent({ timestamp: now(), event_name: 'buy', channel: 'app' });
    await post(shop.write, [
      makeEvent({ timestamp: now(), event_name: 'buy', channel: 'web' }),
      makeEvent({ timestamp: now(), event_name: 'view', channel: 'app' }),
      wanted,
    ]);
    await client.next((m) => m.type === 'event');
    await post(shop.write, [makeEvent({ timestamp: now(), event_name: 'buy', channel: 'app' })]);
    await waitUntil(
      'the second match',
      () => client.messages.filter((m) => m.type === 'event').length >= 2,
      {
        timeoutMs: 10_000,
      },
    );
    const names = client.messages
      .filter((m) => m.type === 'event')
      .map((m) => [
        (m.event as { event_name: string }).event_name,
        (m.event as { channel: string }).channel,
      ]);
    expect(names).toEqual([
      ['buy', 'app'],
      ['buy', 'app'],
    ]);
  });

  it('never sends an event of another project', async () => {
    const client = await live();
    await subscribeBoth(client, { key: shop.read });
    const marker = makeEvent({ timestamp: now(), event_name: 'shop-marker' });
    await post(blog.write, [makeEvent({ timestamp: now(), event_name: 'blog-only' })]);
    await post(shop.write, [marker]);
    await client.next(
      (m) => m.type === 'event' && (m.event as { event_name: string }).event_name === 'shop-marker',
    );
    const names = client.messages
      .filter((m) => m.type === 'event')
      .map((m) => (m.event as { event_name: string }).event_name);
    expect(names).toEqual(['shop-marker']);
  });

  it('sends metrics totals equal to GET /metrics for the same window and filters after commits', async () => {
    const client = await live();
    client.send({
      type: 'subscribe',
      stream: 'metrics',
      key: blog.read,
      window_seconds: 3600,
      channel: 'web',
    });
    const first = await client.next((m) => m.type === 'metrics');
    expect(first).toEqual({
      type: 'metrics',
      totals: { count: expect.any(Number) as number, unique_users: expect.any(Number) as number },
      window_seconds: 3600,
      as_of: expect.any(Number) as number,
    });
    await post(blog.write, [
      makeEvent({ timestamp: now(), user_id: 'ann', channel: 'web' }),
      makeEvent({ timestamp: now(), user_id: 'bob', channel: 'web' }),
      makeEvent({ timestamp: now(), user_id: 'ann', channel: 'app' }),
    ]);
    const last = await waitUntil(
      'metrics after the commit',
      () =>
        client.messages.findLast(
          (m) =>
            m.type === 'metrics' &&
            (m.totals as { count: number }).count > (first.totals as { count: number }).count,
        ),
      { timeoutMs: 10_000 },
    );
    const asOf = last.as_of as number;
    const answer = await getJson(
      `${server.url}/metrics?from=${asOf - 3600}&to=${asOf}&channel=web`,
      {
        'x-api-key': blog.read,
      },
    );
    expect(last.totals).toEqual(answer.body.totals);
    expect(last.totals).toEqual({
      count: (first.totals as { count: number }).count + 2,
      unique_users: expect.any(Number) as number,
    });
  });

  it('lets a client in with no key when the API is open', async () => {
    const openDb = await createTestDatabase();
    const openServer = await startTestServer(openDb.dsn);
    try {
      const client = await openLive(openServer.url);
      await subscribeBoth(client);
      const sent = makeEvent({ timestamp: now(), event_name: 'open-event' });
      expect((await postJson(`${openServer.url}/events`, sent)).status).toBe(202);
      const got = await client.next((m) => m.type === 'event');
      expect((got.event as { event_id: string }).event_id).toBe(sent.event_id);
      client.close();
    } finally {
      await openServer.stop();
      await openDb.close();
    }
  });
});
