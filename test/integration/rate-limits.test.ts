// Per-client limits against the real server: one bucket per key however it is spelled.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { destroyRawConnections } from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let db: TestDatabase;
/** API_KEYS set, RATE_LIMIT_METRICS_PER_MIN=4. */
let keyed: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  keyed = await startTestServer(db.dsn, {
    INGEST_WORKERS: '1',
    API_KEYS: 'key-a,key-b',
    RATE_LIMIT_METRICS_PER_MIN: '4',
  });
});
afterAll(async () => {
  destroyRawConnections();
  await keyed?.stop();
  await db?.close();
});
afterEach(() => destroyRawConnections());

interface Answer {
  readonly status: number;
  readonly remaining: string | null;
}

async function getMetrics(headers: Record<string, string>): Promise<Answer> {
  const res = await fetch(`${keyed.url}/metrics`, { headers });
  await res.arrayBuffer();
  return { status: res.status, remaining: res.headers.get('ratelimit-remaining') };
}

describe('GET /metrics rate limit', () => {
  it('draws one bucket for every spelling of the same key', async () => {
    const spellings: Record<string, string>[] = [
      { authorization: 'Bearer key-a' },
      { authorization: 'bearer key-a' },
      { authorization: 'BEARER   key-a' },
      { 'x-api-key': 'key-a' },
      { authorization: 'Bearer key-a' },
    ];
    const answers: Answer[] = [];
    for (const headers of spellings) answers.push(await getMetrics(headers));
    expect(answers).toEqual([
      { status: 200, remaining: '3' },
      { status: 200, remaining: '2' },
      { status: 200, remaining: '1' },
      { status: 200, remaining: '0' },
      { status: 429, remaining: '0' },
    ]);
  });
});
