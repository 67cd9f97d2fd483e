// Per-client limits against the real server: one bucket per key however it is spelled, the export
// rate limit, and failed API key attempts counted per address.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent } from '../helpers/events.js';
import { destroyRawConnections, jsonPost, openRaw, type RawResponse } from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let db: TestDatabase;
/** API_KEYS set; 4 metrics requests, 2 exports and 3 failed keys a minute. Clients that fail keys
 *  here come from other loopback addresses, so 127.0.0.1 is never blocked. */
let keyed: TestServer;
/** API_KEYS set, AUTH_FAILURES_PER_MIN=2: 127.0.0.1 gets blocked here, through fetch (so every
 *  answer is checked against the OpenAPI document). */
let guarded: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  [keyed, guarded] = await Promise.all([
    startTestServer(db.dsn, {
      INGEST_WORKERS: '1',
      API_KEYS: 'key-a,key-b,key-c',
      RATE_LIMIT_METRICS_PER_MIN: '4',
      RATE_LIMIT_EXPORTS_PER_MIN: '2',
      AUTH_FAILURES_PER_MIN: '3',
    }),
    startTestServer(db.dsn, { INGEST_WORKERS: '1', API_KEYS: 'key-a', AUTH_FAILURES_PER_MIN: '2' }),
  ]);
});
afterAll(async () => {
  destroyRawConnections();
  await Promise.all([keyed?.stop(), guarded?.stop()]);
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

describe('GET /events/export rate limit', () => {
  const exportOnce = async (key: string) => {
    const res = await fetch(`${keyed.url}/events/export?from=0&to=1`, {
      headers: { 'x-api-key': key },
    });
    const text = await res.text();
    return {
      status: res.status,
      limit: res.headers.get('ratelimit-limit'),
      remaining: res.headers.get('ratelimit-remaining'),
      retryAfter: res.headers.get('retry-after') !== null,
      code: res.status === 200 ? null : (JSON.parse(text) as { code: string }).code,
    };
  };

  it('allows RATE_LIMIT_EXPORTS_PER_MIN exports, then 429 with Retry-After and RateLimit headers', async () => {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await exportOnce('key-b'));
    expect(answers).toEqual([
      { status: 200, limit: '2', remaining: '1', retryAfter: false, code: null },
      { status: 200, limit: '2', remaining: '0', retryAfter: false, code: null },
      { status: 429, limit: '2', remaining: '0', retryAfter: true, code: 'rate_limited' },
    ]);
  });

  it('keeps the export bucket apart from the /metrics bucket of the same key', async () => {
    const exports = [];
    for (let i = 0; i < 3; i++) exports.push((await exportOnce('key-c')).status);
    expect(exports).toEqual([200, 200, 429]);
    expect(await getMetrics({ 'x-api-key': 'key-c' })).toEqual({ status: 200, remaining: '3' });
  });
});

describe('failed API key attempts', () => {
  /** One request on its own connection from `from`; its response, and whether the server closed
   *  the connection after it (waited for only when `awaitClose`). */
  async function requestFrom(from: string, bytes: string | Buffer, awaitClose = false) {
    const connection = await openRaw(Number(new URL(keyed.url).port), from);
    connection.write(bytes);
    const response = await connection.next();
    if (awaitClose) await connection.closed();
    const closed = connection.isClosed;
    connection.destroy();
    return { response, closed };
  }
  const post = (key: string) =>
    jsonPost('/events', JSON.stringify(makeEvent()), [`X-API-Key: ${key}`]);
  const getMetricsWith = (key: string) =>
    `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${key}\r\n\r\n`;
  const summary = ({ response, closed }: { response: RawResponse | null; closed: boolean }) => ({
    status: response?.status,
    code:
      response && response.status !== 200
        ? (JSON.parse(response.body) as { code: string }).code
        : null,
    retryAfter: response?.headers['retry-after'] ?? null,
    closed,
  });

  it('refuses the AUTH_FAILURES_PER_MIN+1th wrong key with 429 and Retry-After, before the body, closing the connection', async () => {
    const answers = [];
    for (let i = 0; i < 4; i++)
      answers.push(summary(await requestFrom('127.0.0.2', post(`guess-${i}`), true)));
    const unauthorized = { status: 401, code: 'unauthorized', retryAfter: null, closed: true };
    expect(answers).toEqual([
      unauthorized,
      unauthorized,
      unauthorized,
      {
        status: 429,
        code: 'too_many_auth_failures',
        // 60 s / 3 failures: 20 s to the next token, less what the requests took.
        retryAfter: expect.stringMatching(/^([1-9]|1\d|20)$/) as string,
        closed: true,
      },
    ]);
  });

  it('refuses a correct key from the blocked address, and serves it from another address', async () => {
    for (let i = 0; i < 4; i++) await requestFrom('127.0.0.4', post(`guess-${i}`));
    const blocked = summary(await requestFrom('127.0.0.4', getMetricsWith('key-b')));
    const other = summary(await requestFrom('127.0.0.5', getMetricsWith('key-b')));
    expect([blocked.status, blocked.code, other.status]).toEqual([
      429,
      'too_many_auth_failures',
      200,
    ]);
  });

  it('answers 429 on every route that checks a key while the address is blocked', async () => {
    const failures = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${guarded.url}/metrics`, { headers: { 'x-api-key': 'wrong' } });
      await res.arrayBuffer();
      failures.push(res.status);
    }
    const key = { 'x-api-key': 'key-a' };
    const event = JSON.stringify(makeEvent());
    const json = { ...key, 'content-type': 'application/json' };
    const answers = await Promise.all(
      [
        fetch(`${guarded.url}/events`, { method: 'POST', headers: json, body: event }),
        fetch(`${guarded.url}/events/bulk`, {
          method: 'POST',
          headers: json,
          body: `{"events":[${event}]}`,
        }),
        fetch(`${guarded.url}/metrics`, { headers: { 'x-api-key': 'wrong' } }),
        fetch(`${guarded.url}/metrics`, { headers: key }),
        fetch(`${guarded.url}/events/export?from=0&to=1`, { headers: key }),
        fetch(`${guarded.url}/internal/metrics`, { headers: key }),
      ].map(async (pending) => {
        const res = await pending;
        const body = (await res.json()) as { code: string };
        return {
          status: res.status,
          code: body.code,
          retryAfter: Number(res.headers.get('retry-after')),
        };
      }),
    );
    expect(failures).toEqual([401, 401, 429]);
    for (const answer of answers)
      expect(answer).toEqual({
        status: 429,
        code: 'too_many_auth_failures',
        retryAfter: expect.any(Number) as number,
      });
    for (const { retryAfter } of answers) expect(retryAfter).toBeGreaterThanOrEqual(1);
  });
});
