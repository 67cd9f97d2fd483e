// Per-project limits: the ingest quota (all of a request's events or none), the /metrics limit,
// CORS origins per project, and open mode closing once the first key is stored.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/access/manage-access.js';
import { callApi, createProjectWithKeys, type AdminAnswer } from '../helpers/admin-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent } from '../helpers/events.js';
import { rawRequest } from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

const root = `root-${randomUUID()}`;
let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, { API_KEYS: root });
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

const api = (method: string, path: string, key: string | null, body?: unknown, headers = {}) =>
  callApi(server.url, method, path, key, body, headers);

async function storedOf(ids: readonly string[]): Promise<number> {
  const rows = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM events WHERE event_id = ANY($1::text[])',
    [ids],
  );
  return rows[0]!.n;
}

describe('ingest quota', () => {
  it('answers a burst over the quota with 429 quota_exceeded and its headers, storing exactly the admitted events', async () => {
    const shop = await createProjectWithKeys(server.url, root, 'quota');
    // 3 events a second: a burst of 6, so of 4-event bulks sent at once one fits, then none for a while.
    await api('PATCH', `/admin/projects/${shop.id}`, root, { ingest_events_per_second: 3 });
    const sent: string[][] = [];
    const answers: AdminAnswer[] = [];
    for (let i = 0; i < 6; i++) {
      const events = [0, 1, 2, 3].map(() => makeEvent());
      sent.push(events.map((e) => e.event_id!));
      answers.push(await api('POST', '/events/bulk', shop.write, { events }));
    }
    const admitted = sent.filter((_, i) => answers[i]!.status === 202).flat();
    const refused = answers.filter((a) => a.status === 429);
    expect(answers.every((a) => a.status === 202 || a.status === 429)).toBe(true);
    expect(refused.length).toBeGreaterThanOrEqual(3);
    expect(admitted.length).toBeGreaterThanOrEqual(4);
    expect(refused[0]!.body.code).toBe('quota_exceeded');
    expect(
      ['retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'].map(
        (h) => refused[0]!.headers.get(h) !== null,
      ),
    ).toEqual([true, true, true, true]);
    expect(refused[0]!.headers.get('ratelimit-limit')).toBe('6');
    expect(await storedOf(sent.flat())).toBe(admitted.length);
  });

  it('never admits a request holding more events than the burst', async () => {
    const shop = await createProjectWithKeys(server.url, root, 'small-quota');
    await api('PATCH', `/admin/projects/${shop.id}`, root, { ingest_events_per_second: 1 });
    const events = [0, 1, 2].map(() => makeEvent());
    const answer = await api('POST', '/events/bulk', shop.write, { events });
    expect([answer.status, answer.body.code]).toEqual([429, 'quota_exceeded']);
    expect(await storedOf(events.map((e) => e.event_id!))).toBe(0);
  });

  it('leaves a project without a quota unlimited', async () => {
    const shop = await createProjectWithKeys(server.url, root, 'no-quota');
    const answers = [];
    for (let i = 0; i < 5; i++)
      answers.push(
        await api('POST', '/events/bulk', shop.write, {
          events: [0, 1, 2, 3].map(() => makeEvent()),
        }),
      );
    expect(answers.map((a) => a.status)).toEqual(Array(5).fill(202));
  });
});

describe('metrics limit per project', () => {
  it("limits a project's keys to its metrics_requests_per_minute, naming it", async () => {
    const shop = await createProjectWithKeys(server.url, root, 'metrics-limit');
    await api('PATCH', `/admin/projects/${shop.id}`, root, { metrics_requests_per_minute: 1 });
    const first = await api('GET', '/metrics', shop.read);
    const second = await api('GET', '/metrics', shop.read);
    expect([first.status, second.status, second.body.code]).toEqual([200, 429, 'rate_limited']);
    expect(second.body.detail).toContain('metrics_requests_per_minute');
  });
});

describe('CORS per project', () => {
  it("allows a preflight from a project's origin and refuses a write key's POST from another origin with 403, storing nothing", async () => {
    const shop = await createProjectWithKeys(server.url, root, 'cors');
    await api('PATCH', `/admin/projects/${shop.id}`, root, {
      cors_origins: ['https://shop.example'],
    });
    const port = Number(new URL(server.url).port);
    const preflight = await rawRequest(
      port,
      'OPTIONS /events HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://shop.example\r\nAccess-Control-Request-Method: POST\r\n\r\n',
    );
    const own = makeEvent();
    const foreign = makeEvent();
    const fromOwn = await api('POST', '/events', shop.write, own, {
      origin: 'https://shop.example',
    });
    const fromOther = await api('POST', '/events', shop.write, foreign, {
      origin: 'https://evil.example',
    });
    expect([
      preflight?.status,
      preflight?.headers['access-control-allow-origin'],
      fromOwn.status,
      fromOwn.headers.get('access-control-allow-origin'),
      fromOther.status,
      fromOther.body.code,
    ]).toEqual([
      204,
      'https://shop.example',
      202,
      'https://shop.example',
      403,
      'origin_not_allowed',
    ]);
    expect(await storedOf([own.event_id!, foreign.event_id!])).toBe(1);
  });
});

describe('open mode', () => {
  it('answers as before with no API_KEYS and no stored key, and closes the keyed routes once the first key is stored', async () => {
    const open = await createTestDatabase();
    const plain = await startTestServer(open.dsn);
    const pool = new pg.Pool({ connectionString: open.dsn, max: 1 });
    try {
      const at = (path: string, key: string | null, method = 'GET', body?: unknown) =>
        callApi(plain.url, method, path, key, body);
      const before = await Promise.all([
        at('/events', null, 'POST', makeEvent()),
        at('/metrics', null),
        at('/events/export', null),
        at('/internal/metrics', null),
        at('/admin/projects', null),
      ]);
      expect(before.map((a) => a.status)).toEqual([202, 200, 200, 200, 401]);
      const write = await createKey(pool, 1, 'write', null);
      await waitUntil(
        'the stored key to close POST /events',
        async () => (await at('/events', null, 'POST', makeEvent())).status === 401,
        { timeoutMs: 5000 },
      );
      const after = await Promise.all([
        at('/events', write.key, 'POST', makeEvent()),
        at('/metrics', null),
        at('/internal/metrics', null),
      ]);
      expect(after.map((a) => a.status)).toEqual([202, 401, 401]);
    } finally {
      await pool.end();
      await plain.stop();
      await open.close();
    }
  });
});
