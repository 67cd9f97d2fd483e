// The admin API as scripts use it: every shape and status pinned, secrets shown once.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi, createProjectWithKeys } from '../helpers/admin-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

const root = `root-${randomUUID()}`;
let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, { API_KEYS: root, ACCESS_REFRESH_MS: '100' });
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

const api = (method: string, path: string, key: string | null, body?: unknown) =>
  callApi(server.url, method, path, key, body);
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('projects', () => {
  it('creates a project: 201 with its id as a string, its name and created_at in epoch seconds', async () => {
    const before = nowSeconds();
    const created = await api('POST', '/admin/projects', root, { name: 'shop' });
    expect(created.status).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(['created_at', 'id', 'name']);
    expect(created.body.id).toMatch(/^[0-9]+$/);
    expect(created.body.name).toBe('shop');
    expect(created.body.created_at).toBeGreaterThanOrEqual(before - 1);
    expect(created.body.created_at).toBeLessThanOrEqual(nowSeconds() + 1);
  });

  it('answers 409 project_name_taken to a name that exists', async () => {
    await api('POST', '/admin/projects', root, { name: 'twice' });
    const again = await api('POST', '/admin/projects', root, { name: 'twice' });
    expect([again.status, again.body.code]).toEqual([409, 'project_name_taken']);
  });

  it('lists every project, the default one first, to a root key', async () => {
    const created = await api('POST', '/admin/projects', root, { name: 'listed' });
    const listed = await api('GET', '/admin/projects', root);
    expect(listed.status).toBe(200);
    const projects = listed.body.projects as Record<string, unknown>[];
    expect(projects[0]).toMatchObject({ id: '1', name: 'default' });
    expect(projects).toContainEqual(created.body);
    for (const p of projects) expect(Object.keys(p).sort()).toEqual(['created_at', 'id', 'name']);
  });

  it('refuses a body that breaks the schema with 400 validation_failed naming the field', async () => {
    const answers = await Promise.all([
      api('POST', '/admin/projects', root, { name: '' }),
      api('POST', '/admin/projects', root, { name: 'x', extra: 1 }),
      api('PATCH', '/admin/projects/1', root, { cors_origins: ['https://a.example/path'] }),
      api('PATCH', '/admin/projects/1', root, { ingest_events_per_second: 0 }),
    ]);
    expect(
      answers.map((a) => [a.status, a.body.code, Object.keys(a.body.errors as object)]),
    ).toEqual([
      [400, 'validation_failed', ['name']],
      [400, 'validation_failed', ['extra']],
      [400, 'validation_failed', ['cors_origins[0]']],
      [400, 'validation_failed', ['ingest_events_per_second']],
    ]);
  });

  it('changes any subset of settings with PATCH and answers the project with them', async () => {
    const { body } = await api('POST', '/admin/projects', root, { name: 'patched' });
    const path = `/admin/projects/${body.id as string}`;
    const first = await api('PATCH', path, root, { ingest_events_per_second: 50 });
    const second = await api('PATCH', path, root, { cors_origins: ['https://shop.example'] });
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.body).toEqual({
      ...body,
      ingest_events_per_second: 50,
      metrics_requests_per_minute: null,
      cors_origins: ['https://shop.example'],
    });
  });

  it('answers 404 project_not_found to a root key naming no project, or a malformed id', async () => {
    const answers = await Promise.all([
      api('GET', '/admin/projects/999999/keys', root),
      api('GET', '/admin/projects/abc/keys', root),
      api('PATCH', '/admin/projects/12345678901', root, {}),
    ]);
    expect(answers.map((a) => [a.status, a.body.code])).toEqual([
      [404, 'project_not_found'],
      [404, 'project_not_found'],
      [404, 'project_not_found'],
    ]);
  });
});

describe('keys', () => {
  it('creates a key of each scope, shown once with a prefix by scope and 192 random bits', async () => {
    const { body: project } = await api('POST', '/admin/projects', root, { name: 'keyed' });
    const created = [];
    for (const scope of ['write', 'read', 'admin'])
      created.push(
        await api('POST', `/admin/projects/${project.id as string}/keys`, root, {
          scope,
          name: `${scope} one`,
        }),
      );
    expect(created.map((c) => c.status)).toEqual([201, 201, 201]);
    expect(created.map((c) => Object.keys(c.body).sort())).toEqual(
      Array(3).fill(['id', 'key', 'project_id', 'scope']),
    );
    expect(
      created.map((c) => [c.body.scope, c.body.project_id, (c.body.key as string).slice(0, 5)]),
    ).toEqual([
      ['write', project.id, 'pk_w_'],
      ['read', project.id, 'pk_r_'],
      ['admin', project.id, 'pk_a_'],
    ]);
    for (const c of created) {
      const random = Buffer.from((c.body.key as string).slice(5), 'base64url');
      expect(random.length * 8).toBeGreaterThanOrEqual(128);
    }
    const listed = await api('GET', `/admin/projects/${project.id as string}/keys`, root);
    expect(listed.status).toBe(200);
    expect(listed.body.keys).toEqual(
      created.map((c) => ({
        id: c.body.id,
        scope: c.body.scope,
        name: `${c.body.scope as string} one`,
        created_at: expect.any(Number) as number,
        last_used_at: null,
        revoked: false,
      })),
    );
    const everything =
      JSON.stringify(listed.body) +
      JSON.stringify((await api('GET', '/admin/projects', root)).body);
    for (const c of created) expect(everything).not.toContain((c.body.key as string).slice(5));
    const stored = await db.query<{ secret: string }>(
      "SELECT encode(secret_sha256, 'escape') AS secret FROM api_keys",
    );
    for (const c of created) expect(stored.map((r) => r.secret)).not.toContain(c.body.key);
  });

  it('records last_used_at in the background after a key is used', async () => {
    const shop = await createProjectWithKeys(server.url, root, 'used');
    expect((await api('GET', '/metrics', shop.read)).status).toBe(200);
    const lastUsed = await waitUntil(
      'last_used_at to be flushed',
      async () => {
        const { body } = await api('GET', `/admin/projects/${shop.id}/keys`, root);
        return (body.keys as { id: string; last_used_at: number | null }[]).find(
          (k) => k.id === shop.keyIds.read,
        )?.last_used_at;
      },
      { timeoutMs: 10_000 },
    );
    expect(Math.abs(lastUsed - nowSeconds())).toBeLessThan(60);
  });

  it('revokes a key with DELETE: 204, then 401 on every route, listed as revoked', async () => {
    const shop = await createProjectWithKeys(server.url, root, 'revoking');
    const deleted = await api('DELETE', `/admin/keys/${shop.keyIds.write}`, root);
    expect([deleted.status, deleted.body]).toEqual([204, {}]);
    const after = await Promise.all([
      api('POST', '/events', shop.write, makeEvent()),
      api('GET', '/metrics', shop.write),
      api('GET', '/admin/projects', shop.write),
    ]);
    expect(after.map((a) => a.status)).toEqual([401, 401, 401]);
    const { body } = await api('GET', `/admin/projects/${shop.id}/keys`, root);
    expect(
      (body.keys as { id: string; revoked: boolean }[]).find((k) => k.id === shop.keyIds.write)
        ?.revoked,
    ).toBe(true);
    expect((await api('DELETE', '/admin/keys/99999999', root)).body.code).toBe('key_not_found');
  });
});

describe('an admin key', () => {
  it('sees and manages its own project only: another project is 403 other_project', async () => {
    const [a, b] = [
      await createProjectWithKeys(server.url, root, 'tenant-a'),
      await createProjectWithKeys(server.url, root, 'tenant-b'),
    ];
    const own = await api('GET', '/admin/projects', a.admin);
    expect([own.status, (own.body.projects as { id: string }[]).map((p) => p.id)]).toEqual([
      200,
      [a.id],
    ]);
    const ownKeys = await api('POST', `/admin/projects/${a.id}/keys`, a.admin, { scope: 'read' });
    expect(ownKeys.status).toBe(201);
    const across = await Promise.all([
      api('GET', `/admin/projects/${b.id}/keys`, a.admin),
      api('POST', `/admin/projects/${b.id}/keys`, a.admin, { scope: 'write' }),
      api('PATCH', `/admin/projects/${b.id}`, a.admin, { ingest_events_per_second: 1 }),
      api('DELETE', `/admin/keys/${b.keyIds.write}`, a.admin),
      api('GET', '/admin/projects/999999/keys', a.admin),
    ]);
    expect(across.map((x) => [x.status, x.body.code])).toEqual(
      Array(5).fill([403, 'other_project']),
    );
    expect((await api('POST', '/events', b.write, makeEvent())).status).toBe(202);
  });
});
