// A spawned server sees only what its launcher passes: variables exported in the shell that runs
// the tests (an API key, a queued ack mode) must not change what the suites check.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { spawnServer, type ServerProcess } from '../helpers/server.js';

const stray = { API_KEYS: 'stray-key-from-the-shell', INGEST_ACK: 'queued' };
let db: TestDatabase;
let server: ServerProcess | undefined;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  db = await createTestDatabase();
  for (const [name, value] of Object.entries(stray)) {
    saved[name] = process.env[name];
    process.env[name] = value;
  }
});
afterAll(async () => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await server?.stop();
  await db.close();
});

describe('a spawned server', () => {
  it('ignores API_KEYS and INGEST_ACK set in the test runner: the API is open and the ack durable', async () => {
    server = await spawnServer(db.dsn);
    const res = await postJson(`${server.url}/events`, makeEvent());
    expect({ status: res.status, body: res.body }).toEqual({
      status: 202,
      body: { status: 'stored', inserted: 1, duplicate: false },
    });
  });
});
