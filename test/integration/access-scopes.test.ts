// Every route against every kind of caller: the status each gets is pinned in one table.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi, createProjectWithKeys } from '../helpers/admin-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const root = `root-${randomUUID()}`;
let db: TestDatabase;
let server: TestServer;
let shop: Awaited<ReturnType<typeof createProjectWithKeys>>;
let revoked: string;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, {
    API_KEYS: root,
    AUTH_FAILURES_PER_MIN: '0',
    RATE_LIMIT_METRICS_PER_MIN: '0',
    RATE_LIMIT_EXPORTS_PER_MIN: '0',
  });
  shop = await createProjectWithKeys(server.url, root, 'shop');
  const doomed = await callApi(server.url, 'POST', `/admin/projects/${shop.id}/keys`, root, {
    scope: 'write',
  });
  revoked = doomed.body.key as string;
  await callApi(server.url, 'DELETE', `/admin/keys/${doomed.body.id as string}`, root);
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

type Caller = 'no key' | 'unknown' | 'revoked' | 'write' | 'read' | 'admin' | 'root';
const callers: Caller[] = ['no key', 'unknown', 'revoked', 'write', 'read', 'admin', 'root'];

function keyOf(caller: Caller): string | null {
  switch (caller) {
    case 'no key':
      return null;
    case 'unknown':
      return `pk_w_${randomUUID()}`;
    case 'revoked':
      return revoked;
    case 'root':
      return root;
    default:
      return shop[caller];
  }
}

/** A request of each route; a DELETE gets a fresh key to revoke each time. */
type Request = () => Promise<[method: string, path: string, body?: unknown]>;
const fixed =
  (method: string, path: string, body?: () => unknown): Request =>
  () =>
    Promise.resolve([method, path, body?.()]);

const routes: [string, Request, ...number[]][] = [
  // route                                   no key unknown revoked write read admin root
  ['POST /events', fixed('POST', '/events', () => makeEvent()), 401, 401, 401, 202, 403, 403, 202],
  [
    'POST /events/bulk',
    fixed('POST', '/events/bulk', () => ({ events: [makeEvent()] })),
    401,
    401,
    401,
    202,
    403,
    403,
    202,
  ],
  ['GET /metrics', fixed('GET', '/metrics'), 401, 401, 401, 403, 200, 403, 200],
  ['GET /events/export', fixed('GET', '/events/export'), 401, 401, 401, 403, 200, 403, 200],
  ['GET /internal/metrics', fixed('GET', '/internal/metrics'), 401, 401, 401, 403, 403, 200, 200],
  ['GET /admin/projects', fixed('GET', '/admin/projects'), 401, 401, 401, 403, 403, 200, 200],
  [
    'POST /admin/projects',
    fixed('POST', '/admin/projects', () => ({ name: `p-${randomUUID()}` })),
    401,
    401,
    401,
    403,
    403,
    403,
    201,
  ],
  [
    'PATCH /admin/projects/{id}',
    () => Promise.resolve(['PATCH', `/admin/projects/${shop.id}`, {}]),
    401,
    401,
    401,
    403,
    403,
    200,
    200,
  ],
  [
    'GET /admin/projects/{id}/keys',
    () => Promise.resolve(['GET', `/admin/projects/${shop.id}/keys`]),
    401,
    401,
    401,
    403,
    403,
    200,
    200,
  ],
  [
    'POST /admin/projects/{id}/keys',
    () => Promise.resolve(['POST', `/admin/projects/${shop.id}/keys`, { scope: 'read' }]),
    401,
    401,
    401,
    403,
    403,
    201,
    201,
  ],
  [
    'DELETE /admin/keys/{id}',
    async () => {
      const spare = await callApi(server.url, 'POST', `/admin/projects/${shop.id}/keys`, root, {
        scope: 'read',
      });
      return ['DELETE', `/admin/keys/${spare.body.id as string}`];
    },
    401,
    401,
    401,
    403,
    403,
    204,
    204,
  ],
  ['GET /healthz', fixed('GET', '/healthz'), 200, 200, 200, 200, 200, 200, 200],
  ['GET /readyz', fixed('GET', '/readyz'), 200, 200, 200, 200, 200, 200, 200],
  ['GET /openapi.yaml', fixed('GET', '/openapi.yaml'), 200, 200, 200, 200, 200, 200, 200],
];

describe('scopes', () => {
  it.each(routes)(
    'answers %s with the pinned status for every caller',
    async (_name, request, ...expected) => {
      const got: Record<string, number> = {};
      for (const caller of callers) {
        const [method, path, body] = await request();
        got[caller] = (await callApi(server.url, method, path, keyOf(caller), body)).status;
      }
      expect(got).toEqual(Object.fromEntries(callers.map((c, i) => [c, expected[i]])));
    },
  );

  it('names the scope a route needs in its 403', async () => {
    const answers = await Promise.all([
      callApi(server.url, 'GET', '/metrics', shop.write),
      callApi(server.url, 'POST', '/events', shop.read, makeEvent()),
      callApi(server.url, 'GET', '/internal/metrics', shop.read),
      callApi(server.url, 'POST', '/admin/projects', shop.admin, { name: 'nope' }),
    ]);
    expect(answers.map((a) => [a.status, a.body.code, a.body.required_scope])).toEqual([
      [403, 'insufficient_scope', 'read'],
      [403, 'insufficient_scope', 'write'],
      [403, 'insufficient_scope', 'admin'],
      [403, 'insufficient_scope', 'root'],
    ]);
  });

  it('accepts a stored key as Authorization: Bearer too', async () => {
    const res = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${shop.read}` },
    });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  });
});
