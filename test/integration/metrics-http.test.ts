// GET /metrics over real HTTP: the response shape, the cache and single flight, ETag/304 and
// Cache-Control, per-client rate limiting with its headers, auth, and 400 problems.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const secondsPerDay = 86_400;
const day0 = 19_650 * secondsPerDay;
const ttlMs = 60_000;

let db: TestDatabase;
/** Long cache TTL, no rate limit. */
let cachedServer: TestServer;
/** No cache, no rate limit. */
let uncachedServer: TestServer;
/** RATE_LIMIT_METRICS_PER_MIN=3, per client IP. */
let limitedServer: TestServer;
/** API_KEYS set and RATE_LIMIT_METRICS_PER_MIN=3, per key. */
let keyedServer: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  const common = { INGEST_WORKERS: '1', ROLLUP_REFRESH_MS: '3600000' };
  [cachedServer, uncachedServer, limitedServer, keyedServer] = await Promise.all([
    startTestServer(db.dsn, {
      ...common,
      METRICS_CACHE_TTL_MS: String(ttlMs),
      RATE_LIMIT_METRICS_PER_MIN: '0',
    }),
    startTestServer(db.dsn, {
      ...common,
      METRICS_CACHE_TTL_MS: '0',
      RATE_LIMIT_METRICS_PER_MIN: '0',
    }),
    startTestServer(db.dsn, { ...common, RATE_LIMIT_METRICS_PER_MIN: '3' }),
    startTestServer(db.dsn, {
      ...common,
      RATE_LIMIT_METRICS_PER_MIN: '3',
      API_KEYS: 'key-a,key-b',
    }),
  ]);
  // Two days of events: day 0 has u1 twice and u2; day 1 has u1 (without a channel) and u3.
  const events = [
    makeEvent({ user_id: 'u1', timestamp: day0 + 100, event_name: 'view', channel: 'web' }),
    makeEvent({ user_id: 'u1', timestamp: day0 + 200, event_name: 'view', channel: 'ios' }),
    makeEvent({ user_id: 'u2', timestamp: day0 + 300, event_name: 'buy', channel: 'web' }),
    makeEvent({ user_id: 'u1', timestamp: day0 + secondsPerDay + 5, event_name: 'view' }),
    makeEvent({
      user_id: 'u3',
      timestamp: day0 + secondsPerDay + 6,
      event_name: 'buy',
      channel: 'ios',
    }),
  ];
  delete events[3]!.channel;
  const res = await postJson(`${cachedServer.url}/events/bulk`, { events });
  expect(res.status).toBe(202);
});
afterAll(async () => {
  await Promise.all([
    cachedServer?.stop(),
    uncachedServer?.stop(),
    limitedServer?.stop(),
    keyedServer?.stop(),
  ]);
  await db?.close();
});

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

async function get(
  server: TestServer,
  query: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${server.url}/metrics?${query}`, { headers });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

const twoDays = `from=${day0}&to=${day0 + 2 * secondsPerDay - 1}`;
/** A window of its own per test, so a cached answer from another test cannot leak in. */
let windowCounter = 0;
function freshWindow(): string {
  windowCounter++;
  return `from=${day0 - windowCounter}&to=${day0 + 2 * secondsPerDay - 1}`;
}

function rateLimitHeaders(answer: Answer) {
  return {
    limit: answer.headers.get('ratelimit-limit'),
    remaining: answer.headers.get('ratelimit-remaining'),
    reset: answer.headers.get('ratelimit-reset'),
  };
}

describe('GET /metrics response', () => {
  it('answers totals, the window it was given, as_of and cached without group_by', async () => {
    const before = Date.now();
    const answer = await get(uncachedServer, twoDays);
    const after = Date.now();
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/json');
    expect(answer.body).toEqual({
      totals: { count: 5, unique_users: 3 },
      from: day0,
      to: day0 + 2 * secondsPerDay - 1,
      as_of: expect.any(Number) as number,
      cached: false,
    });
    expect(Object.keys(answer.body)).toEqual(['totals', 'from', 'to', 'as_of', 'cached']);
    // as_of is epoch milliseconds of the database snapshot (same machine clock, loose bounds).
    const asOf = answer.body.as_of as number;
    expect(Number.isInteger(asOf)).toBe(true);
    expect(asOf).toBeGreaterThan(before - 60_000);
    expect(asOf).toBeLessThan(after + 60_000);
  });

  it('adds ascending day buckets with group_by=day', async () => {
    const answer = await get(uncachedServer, `${twoDays}&group_by=day`);
    expect(answer.body).toEqual({
      totals: { count: 5, unique_users: 3 },
      buckets: [
        { bucket_start: day0, count: 3, unique_users: 2 },
        { bucket_start: day0 + secondsPerDay, count: 2, unique_users: 2 },
      ],
      from: day0,
      to: day0 + 2 * secondsPerDay - 1,
      group_by: 'day',
      as_of: expect.any(Number) as number,
      cached: false,
    });
  });

  it('filters by channel, never matching events without one', async () => {
    const web = await get(uncachedServer, `${twoDays}&channel=web&group_by=day`);
    expect(web.body).toMatchObject({
      totals: { count: 2, unique_users: 2 },
      buckets: [{ bucket_start: day0, count: 2, unique_users: 2 }],
    });
    const view = await get(uncachedServer, `${twoDays}&event_name=view`);
    expect(view.body).toMatchObject({ totals: { count: 3, unique_users: 1 } });
  });

  it('answers zeros and no buckets for a window without events', async () => {
    const answer = await get(uncachedServer, 'from=1000&to=2000&group_by=day');
    expect(answer.body).toMatchObject({ totals: { count: 0, unique_users: 0 }, buckets: [] });
  });
});

describe('GET /metrics caching', () => {
  it('answers cached false, then cached true with the same numbers and as_of within the TTL', async () => {
    const window = freshWindow();
    const first = await get(cachedServer, window);
    const second = await get(cachedServer, window);
    expect([first.body.cached, second.body.cached]).toEqual([false, true]);
    expect({ ...second.body, cached: false }).toEqual(first.body);
  });

  it('serves the same cache entry whatever the parameter order', async () => {
    const from = day0 - 5000;
    const to = day0 + 7000;
    const first = await get(cachedServer, `from=${from}&to=${to}&event_name=view&group_by=day`);
    const reordered = await get(cachedServer, `group_by=day&event_name=view&to=${to}&from=${from}`);
    expect([first.body.cached, reordered.body.cached]).toEqual([false, true]);
  });

  it('sends Cache-Control max-age matching the TTL', async () => {
    const cached = await get(cachedServer, freshWindow());
    const uncached = await get(uncachedServer, twoDays);
    expect([cached.headers.get('cache-control'), uncached.headers.get('cache-control')]).toEqual([
      `max-age=${ttlMs / 1000}`,
      'max-age=0',
    ]);
  });

  it('never answers from cache with METRICS_CACHE_TTL_MS=0', async () => {
    const answers = [await get(uncachedServer, twoDays), await get(uncachedServer, twoDays)];
    expect(answers.map((a) => a.body.cached)).toEqual([false, false]);
  });

  it('runs one query for concurrent identical misses (single flight): exactly one cached false', async () => {
    const window = freshWindow();
    const answers = await Promise.all(Array.from({ length: 12 }, () => get(cachedServer, window)));
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 12 }, () => 200));
    expect(answers.filter((a) => a.body.cached === false)).toHaveLength(1);
    const numbers = new Set(answers.map((a) => JSON.stringify({ ...a.body, cached: null })));
    expect(numbers.size).toBe(1);
    expect(new Set(answers.map((a) => a.headers.get('etag'))).size).toBe(1);
  });
});

describe('GET /metrics ETag', () => {
  it('sends an ETag on every 200, cached or not', async () => {
    const window = freshWindow();
    const [miss, hit] = [await get(cachedServer, window), await get(cachedServer, window)];
    expect(miss.headers.get('etag')).toMatch(/^"[^"]+"$/);
    expect(hit.headers.get('etag')).toBe(miss.headers.get('etag'));
    expect((await get(uncachedServer, twoDays)).headers.get('etag')).toMatch(/^"[^"]+"$/);
  });

  it('answers 304 with no body to If-None-Match carrying the current ETag', async () => {
    const window = freshWindow();
    const first = await get(cachedServer, window);
    const etag = first.headers.get('etag')!;
    const revalidated = await get(cachedServer, window, { 'if-none-match': etag });
    expect({
      status: revalidated.status,
      text: revalidated.text,
      etag: revalidated.headers.get('etag'),
      cacheControl: revalidated.headers.get('cache-control'),
    }).toEqual({ status: 304, text: '', etag, cacheControl: `max-age=${ttlMs / 1000}` });
    const inList = await get(cachedServer, window, { 'if-none-match': `"other", ${etag}` });
    expect(inList.status).toBe(304);
  });

  it('answers 304 without a cache too, since the ETag follows the numbers', async () => {
    const first = await get(uncachedServer, twoDays);
    const again = await get(uncachedServer, twoDays, {
      'if-none-match': first.headers.get('etag')!,
    });
    expect(again.status).toBe(304);
  });

  it('answers 200 to a stale or foreign ETag, and the ETag changes with the numbers', async () => {
    const window = `from=${day0 + 3 * secondsPerDay}&to=${day0 + 4 * secondsPerDay}`;
    const before = await get(uncachedServer, window);
    const staleEtag = before.headers.get('etag')!;
    expect((await get(uncachedServer, window, { 'if-none-match': '"nope"' })).status).toBe(200);
    const res = await postJson(`${uncachedServer.url}/events`, {
      ...makeEvent({ timestamp: day0 + 3 * secondsPerDay + 10 }),
    });
    expect(res.status).toBe(202);
    const after = await get(uncachedServer, window, { 'if-none-match': staleEtag });
    expect(after.status).toBe(200);
    expect(after.headers.get('etag')).not.toBe(staleEtag);
    expect(after.body.totals).toEqual({ count: 1, unique_users: 1 });
  });
});

describe('GET /metrics rate limit', () => {
  it('allows RATE_LIMIT_METRICS_PER_MIN answers, then 429 with Retry-After and RateLimit headers', async () => {
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await get(limitedServer, twoDays));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    expect(answers.map((a) => rateLimitHeaders(a).limit)).toEqual(['3', '3', '3', '3']);
    expect(answers.map((a) => rateLimitHeaders(a).remaining)).toEqual(['2', '1', '0', '0']);
    for (const a of answers) expect(Number(rateLimitHeaders(a).reset)).toBeGreaterThanOrEqual(1);
    const refused = answers[3]!;
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.body).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(Number(refused.headers.get('retry-after')))).toBe(true);
  });

  it('sends no RateLimit headers when the limit is off', async () => {
    const answer = await get(uncachedServer, twoDays);
    expect(rateLimitHeaders(answer)).toEqual({ limit: null, remaining: null, reset: null });
  });

  it('limits API keys independently when keys are set', async () => {
    const a = { 'x-api-key': 'key-a' };
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await get(keyedServer, twoDays, a)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const b = await get(keyedServer, twoDays, { authorization: 'Bearer key-b' });
    expect({ status: b.status, remaining: b.headers.get('ratelimit-remaining') }).toEqual({
      status: 200,
      remaining: '2',
    });
    // key-a stays limited while key-b is served.
    expect((await get(keyedServer, twoDays, a)).status).toBe(429);
  });

  it('answers 401 problem+json without a valid key when keys are set', async () => {
    const missing = await get(keyedServer, twoDays);
    const wrong = await get(keyedServer, twoDays, { 'x-api-key': 'key-c' });
    for (const answer of [missing, wrong]) {
      expect({
        status: answer.status,
        type: answer.headers.get('content-type'),
        code: answer.body.code,
      }).toEqual({ status: 401, type: 'application/problem+json', code: 'unauthorized' });
    }
  });
});

describe('GET /metrics 400 problems', () => {
  it.each([
    ['from=abc', 'from'],
    ['from=-5', 'from'],
    ['to=1.5', 'to'],
    ['from=200&to=100', 'from'],
    ['group_by=year', 'group_by'],
    ['user=u1', 'user'],
    ['channel=a&channel=b', 'channel'],
    ['from=0&to=999999999', 'to'],
  ])('refuses %s naming %s', async (query, field) => {
    const answer = await get(cachedServer, query);
    expect({
      status: answer.status,
      type: answer.headers.get('content-type'),
      code: answer.body.code,
      fields: Object.keys(answer.body.errors as Record<string, unknown>),
    }).toEqual({
      status: 400,
      type: 'application/problem+json',
      code: 'invalid_query',
      fields: [field],
    });
    expect(answer.body.detail).toContain(field);
  });
});
