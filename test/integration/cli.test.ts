// `npm run pulse -- …` against a real database: JSON on stdout, one line on stderr when it fails.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../helpers/admin-api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function pulse(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', ...args],
      { env: { PATH: process.env.PATH, POSTGRES_DSN: db.dsn }, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

const json = (run: Run) => JSON.parse(run.stdout) as Record<string, unknown>;

describe('the pulse CLI', () => {
  it('creates a project and prints it as JSON', async () => {
    const run = await pulse('projects', 'create', 'cli-shop');
    expect([run.code, run.stderr]).toEqual([0, '']);
    expect(json(run)).toEqual({
      id: expect.stringMatching(/^[0-9]+$/) as string,
      name: 'cli-shop',
      created_at: expect.any(Number) as number,
    });
    const listed = await pulse('projects', 'list');
    expect((json(listed).projects as { name: string }[]).map((p) => p.name)).toContain('cli-shop');
  });

  it('fails with exit code 1 and one line on stderr for a name that exists', async () => {
    await pulse('projects', 'create', 'cli-twice');
    const run = await pulse('projects', 'create', 'cli-twice');
    expect([run.code, run.stdout, run.stderr]).toEqual([
      1,
      '',
      'a project named "cli-twice" exists\n',
    ]);
  });

  it('creates a key a running server accepts, lists it without its secret, and revokes it', async () => {
    await pulse('projects', 'create', 'cli-keys');
    const created = await pulse(
      'keys',
      'create',
      '--project',
      'cli-keys',
      '--scope',
      'write',
      '--name',
      'site',
    );
    expect(created.code).toBe(0);
    const key = json(created);
    expect(key).toMatchObject({ scope: 'write', key: expect.stringMatching(/^pk_w_/) as string });
    const listed = await pulse('keys', 'list', '--project', 'cli-keys');
    expect(json(listed)).toEqual({
      keys: [
        {
          id: key.id,
          scope: 'write',
          name: 'site',
          created_at: expect.any(Number) as number,
          last_used_at: null,
          revoked: false,
        },
      ],
    });
    expect(listed.stdout).not.toContain((key.key as string).slice(5));
    const server: TestServer = await startTestServer(db.dsn, { API_KEYS: `root-${randomUUID()}` });
    try {
      const post = () => callApi(server.url, 'POST', '/events', key.key as string, makeEvent());
      expect((await post()).status).toBe(202);
      const revoked = await pulse('keys', 'revoke', key.id as string);
      expect([revoked.code, json(revoked)]).toEqual([0, { id: key.id, revoked: true }]);
      await waitUntil(
        'the revoked key to be refused',
        async () =>
          (await callApi(server.url, 'POST', '/events', key.key as string, makeEvent())).status ===
          401,
        { timeoutMs: 5000 },
      );
    } finally {
      await server.stop();
    }
  });

  it('refuses an unknown command or scope with exit code 2 and one line on stderr', async () => {
    const runs = await Promise.all([
      pulse('projects', 'drop', 'x'),
      pulse('keys', 'create', '--project', 'default', '--scope', 'everything'),
    ]);
    expect(runs.map((r) => [r.code, r.stdout, r.stderr.split('\n').length])).toEqual([
      [2, '', 2],
      [2, '', 2],
    ]);
  });
});
