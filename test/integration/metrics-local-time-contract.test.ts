// GET /metrics local-time parameters over real HTTP: every bad value is a 400 naming its
// parameter, the bucket limit, the echoes and key order of the answer, breakdown ranking and ties,
// ETag/304 and the cache key with the new parameters, and adversarial query strings answered
// quickly.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { getJson, postJson, type TestEvent } from '../helpers/events.js';
import type { Bucket } from '../helpers/metrics-oracle.js';
import { destroyRawConnections, rawRequest } from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { perUwsBuild } from '../helpers/uws-build.js';

const hour = 3600;
const day = 86_400;
const utc = (y: number, mo: number, d: number, h = 0, mi = 0) =>
  Date.UTC(y, mo - 1, d, h, mi) / 1000;

/** Monday 2024-02-12 UTC: the day the breakdown events are on. */
const day0 = utc(2024, 2, 12);
const wholeDay0 = `from=${day0}&to=${day0 + day - 1}`;

let db: TestDatabase;
/** No cache, no rate limit, the largest query string MAX_HEADER_BYTES allows. */
let uncached: TestServer;
/** A long cache TTL. */
let cached: TestServer;
/** METRICS_MAX_BUCKETS=24. */
let fewBuckets: TestServer;

/** Two events per channel for six channels and events with none, three for `z`; one user is in
 *  every tied channel, so the exact users of a rest are fewer than their sum. */
const tiedChannels = ['é', '🦊', 'b', 'ｚ', 'a', 'B', null];
function breakdownEvents(): TestEvent[] {
  const events: TestEvent[] = [];
  const add = (channel: string | null, user: string, at: number) => {
    const event: TestEvent = { event_name: `name-${user}`, user_id: user, timestamp: at };
    if (channel !== null) event.channel = channel;
    events.push(event);
  };
  tiedChannels.forEach((channel, i) => {
    add(channel, `only-${i}`, day0 + 2 * hour + i);
    add(channel, 'shared', day0 + 20 * hour + i);
  });
  for (const [i, user] of ['x', 'y', 'x'].entries()) add('z', user, day0 + 10 * hour + i);
  return events;
}

beforeAll(async () => {
  db = await createTestDatabase();
  const common = {
    INGEST_WORKERS: '1',
    ROLLUP_REFRESH_MS: '3600000',
    RATE_LIMIT_METRICS_PER_MIN: '0',
  };
  [uncached, cached, fewBuckets] = await Promise.all([
    startTestServer(db.dsn, { ...common, METRICS_CACHE_TTL_MS: '0', MAX_HEADER_BYTES: '65536' }),
    startTestServer(db.dsn, { ...common, METRICS_CACHE_TTL_MS: '60000' }),
    startTestServer(db.dsn, { ...common, METRICS_CACHE_TTL_MS: '0', METRICS_MAX_BUCKETS: '24' }),
  ]);
  const res = await postJson(`${uncached.url}/events/bulk`, { events: breakdownEvents() });
  expect(res.status).toBe(202);
});
afterEach(() => destroyRawConnections());
afterAll(async () => {
  await Promise.all([uncached?.stop(), cached?.stop(), fewBuckets?.stop()]);
  await db?.close();
});

const get = (server: TestServer, query: string, headers: Record<string, string> = {}) =>
  getJson(`${server.url}/metrics?${query}`, headers);

/** The answer without what changes from one request to the next. */
async function numbers(server: TestServer, query: string): Promise<Record<string, unknown>> {
  const { status, body } = await get(server, query);
  expect(status, `${query}: ${JSON.stringify(body)}`).toBe(200);
  delete body.as_of;
  delete body.cached;
  return body;
}

/** status, code and the parameters named, as one value. */
async function refusal(server: TestServer, query: string) {
  const { status, headers, body } = await get(server, query);
  return {
    status,
    type: headers.get('content-type'),
    code: body.code,
    fields: Object.keys(body.errors ?? {}).sort(),
  };
}

const invalid = (...fields: string[]) => ({
  status: 400,
  type: 'application/problem+json',
  code: 'invalid_query',
  fields: fields.sort(),
});

describe('GET /metrics local-time parameters: 400 problems', () => {
  it.each([
    ['group_by=year', 'group_by'],
    ['group_by=HOUR', 'group_by'],
    ['fill=zeros', 'fill'],
    ['fill=zero&fill=none', 'fill'],
    ['week_start=saturday', 'week_start'],
    ['breakdown=user_id', 'breakdown'],
    ['breakdown=event_name&limit=0', 'limit'],
    ['breakdown=event_name&limit=101', 'limit'],
    ['breakdown=channel&limit=1.5', 'limit'],
    ['breakdown=channel&limit=ten', 'limit'],
    ['breakdown=channel&limit=', 'limit'],
    ['breakdown=channel&limit=99999999999999999999', 'limit'],
    ['limit=5', 'limit'],
    ['tz=Mars/Olympus', 'tz'],
    ['tz=', 'tz'],
    ['tz=UTC&tz=UTC', 'tz'],
    ['tz=America/New%20York', 'tz'],
    ['tz=../../etc/passwd', 'tz'],
    ['tz=Europe/Berlin%00', 'tz'],
    ['tz=%2B05:30', 'tz'],
    ['tz=Europe/Berlin%0A', 'tz'],
    [`tz=${'A'.repeat(65)}`, 'tz'],
    [`tz=Etc/${'A'.repeat(57)}`, 'tz'],
  ])('refuses %s naming %s', async (query, field) => {
    expect(await refusal(uncached, `${wholeDay0}&${query}`)).toEqual(invalid(field));
  });

  it('names every bad parameter of one request at once', async () => {
    const query = 'group_by=year&fill=zeros&week_start=saturday&breakdown=user_id&tz=Mars/Olympus';
    expect(await refusal(uncached, query)).toEqual(
      invalid('group_by', 'fill', 'week_start', 'breakdown', 'tz'),
    );
  });

  it('says limit applies only with breakdown', async () => {
    const { body } = await get(uncached, 'limit=5');
    expect((body.errors as Record<string, string[]>).limit!.join(' ')).toContain('breakdown');
  });

  it('quotes no Intl or Postgres error text for an unknown zone', async () => {
    const { body } = await get(uncached, 'tz=Mars/Olympus&group_by=day');
    expect(JSON.stringify(body)).not.toMatch(/RangeError|Invalid time zone|not recognized/i);
  });

  it('answers every zone ICU lists, and the aliases it accepts, with 200 or a 400 naming tz', async () => {
    const zones = [
      ...Intl.supportedValuesOf('timeZone'),
      ...['EST5EDT', 'Etc/GMT-14', 'Asia/Calcutta', 'US/Pacific-New', 'SystemV/AST4', 'utc'],
    ];
    const outcomes = new Map<string, string[]>();
    const ask = async (tz: string) => {
      const query = `${wholeDay0}&group_by=hour&tz=${encodeURIComponent(tz)}`;
      const { status, body } = await get(uncached, query);
      const named = Object.keys(body.errors ?? {}).join();
      const outcome = status === 200 ? '200' : status === 400 ? `400 ${named}` : `${status}`;
      outcomes.set(outcome, [...(outcomes.get(outcome) ?? []), tz]);
    };
    // Four at a time: each new zone costs the server its offsets for the year.
    for (let i = 0; i < zones.length; i += 4) await Promise.all(zones.slice(i, i + 4).map(ask));
    expect([...outcomes.keys()].filter((o) => o !== '200' && o !== '400 tz')).toEqual([]);
    expect(outcomes.get('200')!.length).toBeGreaterThan(300);
  });
});

describe('GET /metrics bucket limit', () => {
  const hourStart = utc(2023, 1, 1);
  const hours = (n: number) => `from=${hourStart}&to=${hourStart + n * hour - 1}&group_by=hour`;

  it('answers exactly 10000 hour buckets, with and without fill', async () => {
    for (const fill of ['none', 'zero']) {
      const { status, body } = await get(uncached, `${hours(10_000)}&fill=${fill}`);
      expect(status).toBe(200);
      if (fill === 'zero') expect(body.buckets).toHaveLength(10_000);
    }
  });

  it('refuses 10001 buckets naming the limit and METRICS_MAX_BUCKETS, with and without fill', async () => {
    for (const query of [
      hours(10_001),
      `${hours(10_001)}&fill=zero`,
      `${hours(10_000)}&tz=Asia/Kathmandu`,
    ]) {
      const { status, body } = await get(uncached, query);
      expect({ status, errors: Object.keys(body.errors as object) }).toEqual({
        status: 400,
        errors: ['group_by'],
      });
      const message = (body.errors as Record<string, string[]>).group_by!.join(' ');
      expect(message).toMatch(/10[ ,]?000/);
      expect(message).toContain('METRICS_MAX_BUCKETS');
    }
  });

  it('counts the partial buckets at both ends of the window', async () => {
    const window = (to: number) => `from=${hourStart + 1}&to=${to}&group_by=hour`;
    expect((await get(uncached, window(hourStart + 10_000 * hour - 1))).status).toBe(200);
    expect((await get(uncached, window(hourStart + 10_000 * hour))).status).toBe(400);
  });

  it('takes METRICS_MAX_BUCKETS from the environment, counting the partial hours of a +5:45 zone', async () => {
    expect((await get(fewBuckets, `${wholeDay0}&group_by=hour`)).status).toBe(200);
    expect(await refusal(fewBuckets, `${wholeDay0}&group_by=hour&tz=Asia/Kathmandu`)).toEqual(
      invalid('group_by'),
    );
    const { body } = await get(fewBuckets, `from=${day0}&to=${day0 + day}&group_by=hour`);
    expect((body.errors as Record<string, string[]>).group_by!.join(' ')).toMatch(
      /\b24\b.*METRICS_MAX_BUCKETS|METRICS_MAX_BUCKETS.*\b24\b/,
    );
  });
});

describe('GET /metrics answer size with a breakdown', () => {
  const hourStart = utc(2023, 1, 1);
  const hours = (n: number) => `from=${hourStart}&to=${hourStart + n * hour - 1}&group_by=hour`;

  it('refuses buckets × (1 + limit) over METRICS_MAX_SERIES_BUCKETS naming limit, and answers at the bound', async () => {
    // 10000 buckets × (1 + 9) is the default 100000; one more top value is over.
    const at = await get(uncached, `${hours(10_000)}&breakdown=channel&limit=9`);
    expect(at.status).toBe(200);
    const { status, body } = await get(uncached, `${hours(10_000)}&breakdown=channel&limit=10`);
    expect({ status, errors: Object.keys(body.errors as object) }).toEqual({
      status: 400,
      errors: ['limit'],
    });
    expect((body.errors as Record<string, string[]>).limit!.join(' ')).toContain(
      'METRICS_MAX_SERIES_BUCKETS',
    );
    // Without group_by there are no series: any limit.
    expect(
      (
        await get(
          uncached,
          `${hours(10_000).replace('&group_by=hour', '')}&breakdown=channel&limit=100`,
        )
      ).status,
    ).toBe(200);
  });
});

describe('GET /metrics breakdown values remembered between answers', () => {
  it('keeps a channel named "null" apart from events with no channel, in series answered from memory', async () => {
    // A New York day of 24 hour cells: its counts are remembered at its cells' signature.
    const from = utc(2024, 3, 20, 4);
    const events: TestEvent[] = [
      { event_name: 'n', user_id: 'a', timestamp: from + 100, channel: 'null' },
      { event_name: 'n', user_id: 'b', timestamp: from + 7200, channel: 'null' },
      ...[300, 4000, 9000].map((t) => ({ event_name: 'n', user_id: 'c', timestamp: from + t })),
    ];
    expect((await postJson(`${uncached.url}/events/bulk`, { events })).status).toBe(202);
    await uncached.service.refresher.refreshNow();
    const query = `from=${from}&to=${from + day - 1}&group_by=day&tz=America/New_York&breakdown=channel`;
    const series = [
      { value: null, buckets: [{ bucket_start: from, count: 3, unique_users: 1 }] },
      { value: 'null', buckets: [{ bucket_start: from, count: 2, unique_users: 2 }] },
    ];
    // The first answer counts the cells; the second takes the counts it remembered.
    for (let i = 0; i < 2; i++) {
      const { breakdown } = (await numbers(uncached, query)) as { breakdown: { series: unknown } };
      expect(breakdown.series).toEqual(series);
    }
  });
});

describe('GET /metrics answer shape', () => {
  it('echoes from and to when given, and no tz or group_by', async () => {
    expect(Object.keys(await numbers(uncached, wholeDay0))).toEqual(['totals', 'from', 'to']);
  });

  it('echoes group_by without tz when only group_by is given', async () => {
    const answer = await numbers(uncached, 'group_by=day');
    expect(Object.keys(answer)).toEqual(['totals', 'buckets', 'group_by']);
    expect(answer.group_by).toBe('day');
  });

  it('echoes tz with totals only when tz comes without group_by', async () => {
    const answer = await numbers(uncached, `${wholeDay0}&tz=Asia/Kolkata`);
    expect(answer).toEqual({
      totals: { count: 17, unique_users: 10 },
      tz: 'Asia/Kolkata',
      from: day0,
      to: day0 + day - 1,
    });
  });

  it('orders the keys totals, buckets, breakdown, echoes, as_of, cached', async () => {
    const { body } = await get(
      uncached,
      `${wholeDay0}&group_by=hour&tz=Asia/Kathmandu&breakdown=channel&limit=2&fill=zero`,
    );
    expect(Object.keys(body)).toEqual([
      'totals',
      'buckets',
      'breakdown',
      'tz',
      'group_by',
      'from',
      'to',
      'as_of',
      'cached',
    ]);
    const breakdown = body.breakdown as Record<string, Record<string, unknown>[]>;
    expect({
      breakdown: Object.keys(breakdown),
      bucket: Object.keys((body.buckets as object[])[0]!),
      value: Object.keys(breakdown.values![0]!),
      series: Object.keys(breakdown.series![0]!),
    }).toEqual({
      breakdown: ['by', 'values', 'other', 'series'],
      bucket: ['bucket_start', 'count', 'unique_users'],
      value: ['value', 'count', 'unique_users'],
      series: ['value', 'buckets'],
    });
  });
});

describe('GET /metrics week_start', () => {
  it('accepts week_start with any group_by and changes only weeks', async () => {
    const [byDay, byDaySunday, byWeek, byWeekSunday] = await Promise.all(
      ['day', 'day&week_start=sunday', 'week', 'week&week_start=sunday'].map((g) =>
        numbers(uncached, `${wholeDay0}&group_by=${g}`),
      ),
    );
    expect(byDaySunday).toEqual(byDay);
    expect((byWeek!.buckets as Bucket[])[0]!.bucket_start).toBe(day0);
    expect((byWeekSunday!.buckets as Bucket[])[0]!.bucket_start).toBe(day0 - day);
  });
});

describe('GET /metrics breakdown', () => {
  it('ranks by count, then ties by value in code-point order, with no channel (null) last', async () => {
    const { breakdown } = await numbers(uncached, `${wholeDay0}&breakdown=channel&limit=100`);
    expect(breakdown).toEqual({
      by: 'channel',
      values: [
        { value: 'z', count: 3, unique_users: 2 },
        ...['B', 'a', 'b', 'é', 'ｚ', '🦊', null].map((value) => ({
          value,
          count: 2,
          unique_users: 2,
        })),
      ],
      other: { count: 0, unique_users: 0 },
    });
  });

  it('counts the exact users of the rest in other, not their sum', async () => {
    const { breakdown } = await numbers(uncached, `${wholeDay0}&breakdown=channel&limit=3`);
    expect((breakdown as { other: unknown }).other).toEqual({ count: 10, unique_users: 6 });
  });

  it('answers other as zeros and no values for a window without events', async () => {
    const { breakdown } = await numbers(
      uncached,
      `from=${day0 - day}&to=${day0 - 1}&breakdown=event_name`,
    );
    expect(breakdown).toEqual({
      by: 'event_name',
      values: [],
      other: { count: 0, unique_users: 0 },
    });
  });

  it('gives each top value its own series, in the same order, under the same fill', async () => {
    const answer = await numbers(
      uncached,
      `${wholeDay0}&breakdown=channel&limit=2&group_by=hour&fill=none`,
    );
    expect((answer.breakdown as { series: unknown }).series).toEqual([
      {
        value: 'z',
        buckets: [{ bucket_start: day0 + 10 * hour, count: 3, unique_users: 2 }],
      },
      {
        value: 'B',
        buckets: [
          { bucket_start: day0 + 2 * hour, count: 1, unique_users: 1 },
          { bucket_start: day0 + 20 * hour, count: 1, unique_users: 1 },
        ],
      },
    ]);
  });
});

describe('GET /metrics ETag and cache with the new parameters', () => {
  const withTz = (tz: string) => `${wholeDay0}&group_by=hour&fill=zero&breakdown=channel&tz=${tz}`;

  it('answers 304 to a matching If-None-Match, and another tz gets another ETag and a 200', async () => {
    const kolkata = await get(cached, withTz('Asia/Kolkata'));
    const etag = kolkata.headers.get('etag')!;
    expect((await get(cached, withTz('Asia/Kolkata'), { 'if-none-match': etag })).status).toBe(304);
    const berlin = await get(cached, withTz('Europe/Berlin'), { 'if-none-match': etag });
    expect(berlin.status).toBe(200);
    expect(berlin.headers.get('etag')).not.toBe(etag);
  });

  it('keys the cache by every parameter: each variant answers as an uncached server does', async () => {
    const base = `from=${day0 - 2 * day}&to=${day0 + day - 1}&group_by=day&breakdown=channel&limit=3`;
    const variants = [
      base,
      `${base}&tz=UTC`,
      `${base}&tz=Asia/Kolkata`,
      `${base}&tz=Asia/Kolkata&fill=zero`,
      base.replace('group_by=day', 'group_by=hour'),
      base.replace('group_by=day', 'group_by=week'),
      base.replace('group_by=day', 'group_by=week&week_start=sunday'),
      base.replace('group_by=day', 'group_by=month'),
      base.replace('breakdown=channel', 'breakdown=event_name'),
      base.replace('limit=3', 'limit=4'),
      `${base}&channel=z`,
      `${base}&event_name=name-shared`,
      base.replace(`from=${day0 - 2 * day}`, `from=${day0 + 3 * hour}`),
      base.replace(`to=${day0 + day - 1}`, `to=${day0 + 15 * hour}`),
    ];
    const truths = [];
    for (const query of variants) truths.push(await numbers(uncached, query));
    expect(new Set(truths.map((t) => JSON.stringify(t))).size).toBe(variants.length);
    const answers = [];
    for (const query of variants) answers.push(await numbers(cached, query));
    expect(answers).toEqual(truths);
  });
});

describe('GET /metrics adversarial query strings', () => {
  /** A linear parser answers these in milliseconds; a quadratic one in tens of seconds. */
  const quickMs = 2000;
  const send = async (query: string) => {
    const started = performance.now();
    const port = Number(new URL(uncached.url).port);
    const response = await rawRequest(
      port,
      `GET /metrics?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    );
    return { status: response?.status ?? null, ms: performance.now() - started };
  };

  it('refuses a 100 KB query string by the head limit, quickly', async () => {
    const { status, ms } = await send(`tz=${'A'.repeat(100_000)}`);
    expect(status).toBe(perUwsBuild({ '20.30': 414, '20.57': 431 }));
    expect(ms).toBeLessThan(quickMs);
  });

  it.each([
    ['a 60 KB tz', `tz=${'A'.repeat(60_000)}`, 'tz'],
    ['a 60 KB tz of separators', `tz=${'A/_+-'.repeat(12_000)}`, 'tz'],
    ['a 60 KB group_by', `group_by=${'hour'.repeat(15_000)}`, 'group_by'],
    ['a 60 KB limit', `breakdown=channel&limit=${'9'.repeat(60_000)}`, 'limit'],
    ['a 60 KB percent-encoded tz', `tz=${'%41'.repeat(20_000)}`, 'tz'],
    ['6000 repeats of one parameter', 'fill=zero&'.repeat(6_000), 'fill'],
  ])('refuses %s with a 400, quickly', async (_, query, field) => {
    const started = performance.now();
    const answer = await refusal(uncached, query);
    const ms = performance.now() - started;
    // uWS 20.57 refuses a request head over 4 KB itself.
    expect(answer).toEqual(
      perUwsBuild<unknown>({
        '20.30': invalid(field),
        '20.57': expect.objectContaining({ status: 431 }) as unknown,
      }),
    );
    expect(ms).toBeLessThan(quickMs);
  });

  it('refuses thousands of unknown parameters with one 400, quickly', async () => {
    const query = Array.from({ length: 6_000 }, (_, i) => `p${i}=`).join('&');
    const { status, ms } = await send(query);
    expect(status).toBe(perUwsBuild({ '20.30': 400, '20.57': 431 }));
    expect(ms).toBeLessThan(quickMs);
  });
});
