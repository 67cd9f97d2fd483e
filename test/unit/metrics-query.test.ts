// Pure pieces of GET /metrics: query parsing and its cache key, the user bitmaps, the rate limiter.
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/http/rate-limiter.js';
import { countMetrics } from '../../src/metrics/count-metrics.js';
import { canonicalTimeZone } from '../../src/metrics/local-time.js';
import { planMetrics } from '../../src/metrics/metrics-plan.js';
import {
  metricsCacheKey,
  parseMetricsQuery,
  type MetricsQuery,
} from '../../src/metrics/metrics-query.js';
import { parseTimeWindow } from '../../src/metrics/time-window.js';
import type { RawGroup } from '../../src/sql/read-metrics.js';
import {
  bitmapWith,
  decodeUserSet,
  encodeUserSet,
  hasBit,
  orInto,
  orUserSetInto,
  popcount,
  trimmed,
  userSetHas,
  userSetSize,
} from '../../src/sql/user-set-format.js';

const now = 1_700_000_000;
const day = 86_400;
const maxDays = 3660;

function parsed(query: string, maxWindowDays = maxDays): MetricsQuery {
  const result = parseMetricsQuery(query, now, {
    maxWindowDays,
    maxBuckets: 10_000,
    maxSeriesBuckets: 100_000,
  });
  if (!result.ok) throw new Error(`expected ${query} to parse: ${JSON.stringify(result.problem)}`);
  return result.query;
}

/** The problem's code and the fields it names (fails the test if the query was accepted). */
function refusal(query: string, maxWindowDays = maxDays): { code: string; fields: string[] } {
  const result = parseMetricsQuery(query, now, {
    maxWindowDays,
    maxBuckets: 10_000,
    maxSeriesBuckets: 100_000,
  });
  if (result.ok) throw new Error(`expected ${query} to be refused`);
  return { code: result.problem.code, fields: Object.keys(result.problem.errors ?? {}) };
}

describe('parseMetricsQuery', () => {
  it('defaults to the 24 h ending now without a window', () => {
    expect(parsed('')).toEqual({
      from: now - day,
      to: now,
      eventName: null,
      channel: null,
      buckets: null,
      fillZero: false,
      breakdown: null,
      echo: {},
    });
  });

  it('runs from `from` up to now when only from is given', () => {
    expect(parsed(`from=${now - 3 * day}`)).toMatchObject({ from: now - 3 * day, to: now });
  });

  it('ends at from (an empty-tail window) when only a future from is given', () => {
    expect(parsed(`from=${now + 10}`)).toMatchObject({ from: now + 10, to: now + 10 });
  });

  it('covers the 24 h before `to` when only to is given', () => {
    expect(parsed(`to=${now - 5 * day}`)).toMatchObject({ from: now - 6 * day, to: now - 5 * day });
  });

  it('never starts before the epoch when only a small `to` is given', () => {
    expect(parsed('to=100')).toMatchObject({ from: 0, to: 100 });
  });

  it('keeps both bounds as given (inclusive) and accepts from = to', () => {
    expect(parsed('from=1000&to=1000')).toMatchObject({ from: 1000, to: 1000 });
    expect(parsed('from=0&to=86399')).toMatchObject({ from: 0, to: 86_399 });
  });

  it('reads the filters and group_by=day', () => {
    expect(parsed('event_name=signup&channel=web&group_by=day&from=1&to=2')).toEqual({
      from: 1,
      to: 2,
      eventName: 'signup',
      channel: 'web',
      buckets: { rule: { unit: 'day', tz: 'UTC', weekStart: 'monday' }, boundaries: [0, day] },
      fillZero: false,
      breakdown: null,
      echo: { group_by: 'day', from: 1, to: 2 },
    });
  });

  it('decodes percent-encoded filter values', () => {
    expect(parsed('event_name=add%20to%20cart&channel=%F0%9F%93%B1')).toMatchObject({
      eventName: 'add to cart',
      channel: '📱',
    });
  });

  it.each([
    ['from=abc', 'from'],
    ['from=1.5', 'from'],
    ['from=-1', 'from'],
    ['from=1e3', 'from'],
    ['from=', 'from'],
    ['from=%2B5', 'from'],
    ['to=12.0', 'to'],
    ['to=-86400', 'to'],
    ['to=253402300800', 'to'],
    ['to=9999999999999', 'to'],
  ])('refuses %s naming %s', (query, field) => {
    expect(refusal(query)).toEqual({ code: 'invalid_query', fields: [field] });
  });

  it('refuses from later than to', () => {
    expect(refusal('from=2000&to=1999')).toEqual({ code: 'invalid_query', fields: ['from'] });
  });

  it.each(['year', 'minute', 'DAY', ''])('refuses group_by=%s', (value) => {
    expect(refusal(`group_by=${value}`)).toEqual({ code: 'invalid_query', fields: ['group_by'] });
  });

  it('refuses an unknown parameter, naming it', () => {
    expect(refusal('from=1&to=2&user_id=u1')).toEqual({
      code: 'invalid_query',
      fields: ['user_id'],
    });
  });

  it('refuses a repeated parameter, naming it', () => {
    expect(refusal('event_name=a&event_name=b')).toEqual({
      code: 'invalid_query',
      fields: ['event_name'],
    });
  });

  it('names every bad parameter at once', () => {
    expect(refusal('from=x&to=y&group_by=year&bogus=1').fields.sort()).toEqual([
      'bogus',
      'from',
      'group_by',
      'to',
    ]);
  });

  it('refuses an empty filter value', () => {
    expect(refusal('channel=')).toEqual({ code: 'invalid_query', fields: ['channel'] });
  });

  it('accepts a window of exactly METRICS_MAX_WINDOW_DAYS and refuses one second more', () => {
    const from = 10 * day;
    expect(parsed(`from=${from}&to=${from + 7 * day - 1}`, 7)).toMatchObject({
      from,
      to: from + 7 * day - 1,
    });
    expect(refusal(`from=${from}&to=${from + 7 * day}`, 7)).toEqual({
      code: 'invalid_query',
      fields: ['to'],
    });
  });

  it('refuses instead of clamping a window over the default 3660 days', () => {
    expect(refusal(`from=0&to=${3661 * day}`)).toEqual({ code: 'invalid_query', fields: ['to'] });
  });

  it('only accepts the parameters it is given as allowed (export has no group_by)', () => {
    const result = parseTimeWindow('group_by=day', now, maxDays, new Set(['from', 'to']));
    expect(result.ok ? [] : Object.keys(result.problem.errors ?? {})).toEqual(['group_by']);
  });
});

describe('metricsCacheKey', () => {
  const key = (query: string) => metricsCacheKey(parsed(query), 1);

  it('is the same whatever the parameter order', () => {
    expect(key('channel=web&from=10&event_name=a&to=20&group_by=day')).toBe(
      key('group_by=day&to=20&event_name=a&from=10&channel=web'),
    );
  });

  it('differs for defaults left out and spelled out: the answer repeats what was given', () => {
    expect(key('')).not.toBe(key(`from=${now - day}&to=${now}`));
    expect(key(`from=${now - 5}`)).not.toBe(key(`to=${now}&from=${now - 5}`));
  });

  it('differs when anything that changes the answer differs', () => {
    const keys = [
      key('from=10&to=20'),
      key('from=10&to=21'),
      key('from=11&to=20'),
      key('from=10&to=20&group_by=day'),
      key('from=10&to=20&event_name=a'),
      key('from=10&to=20&channel=a'),
      key('from=10&to=20&event_name=a&channel=a'),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('countMetrics', () => {
  const stored = (userInts: number[]) => decodeUserSet(encodeUserSet(bitmapWith(null, userInts)));
  const cell = (start: number, eventCount: number, userInts: number[]) => ({
    span: 'day' as const,
    start,
    value: '',
    eventCount,
    version: '1',
    key: `day/${start}`,
    users: stored(userInts),
  });
  const tail = (
    d: number,
    userId: string,
    userInt: number | null,
    eventCount: number,
  ): RawGroup => ({
    at: d * day + 5,
    edge: null,
    userId,
    userInt,
    value: null,
    eventCount,
  });

  it('unions rollup user sets, known raw users and unseen raw users without double counting', () => {
    const q = parsed(`from=0&to=${10 * day - 1}&group_by=day`);
    const read = {
      asOfMs: 0,
      // Both read forms: day 2 a bitmap (0, 3), day 1 a list (3000).
      cells: [[cell(2, 5, [0, 3]), cell(1, 2, [3000])]],
      slivers: [new Map()],
      signatures: [[]],
      raw: [
        tail(2, 'u-zero', 0, 1),
        tail(2, 'u-five', 5, 1),
        tail(1, 'u-3000', 3000, 1),
        tail(2, 'new-a', null, 2),
        tail(3, 'new-a', null, 1),
        tail(3, 'u-nine', 9, 1),
      ],
    };
    expect(countMetrics(q, planMetrics(q), read)).toEqual({
      totals: { count: 14, unique_users: 6 },
      buckets: [
        { bucket_start: 1 * day, count: 3, unique_users: 1 },
        { bucket_start: 2 * day, count: 9, unique_users: 4 },
        { bucket_start: 3 * day, count: 2, unique_users: 2 },
      ],
      group_by: 'day',
      from: 0,
      to: 10 * day - 1,
    });
  });

  it('leaves buckets out without group_by and answers zeros for nothing', () => {
    const empty = { asOfMs: 0, cells: [[]], slivers: [new Map()], raw: [], signatures: [[]] };
    const totalsOnly = parsed('from=0&to=100');
    expect(countMetrics(totalsOnly, planMetrics(totalsOnly), empty)).toEqual({
      totals: { count: 0, unique_users: 0 },
      from: 0,
      to: 100,
    });
    const byDay = parsed('group_by=day');
    expect(countMetrics(byDay, planMetrics(byDay), empty)).toEqual({
      totals: { count: 0, unique_users: 0 },
      buckets: [],
      group_by: 'day',
    });
  });
});

/** A reproducible random integer in [0, n): a linear congruential generator from `seed`. */
function seededRandom(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state % n;
  };
}

/** The user ints a bitmap holds, ascending. */
function members(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bitmap.length * 8; i++) if (hasBit(bitmap, i)) out.push(i);
  return out;
}

describe('user bitmaps', () => {
  it('bitmapWith sets exactly the given bits, starting from nothing', () => {
    const bitmap = bitmapWith(null, [0, 7, 8, 100, 7]);
    expect(members(bitmap)).toEqual([0, 7, 8, 100]);
    expect(popcount(bitmap)).toBe(4);
  });

  it('bitmapWith grows a short bitmap and keeps its old bits', () => {
    const small = bitmapWith(null, [1]);
    expect(small.length).toBeGreaterThanOrEqual(1);
    const grown = bitmapWith(small, [5000, 2]);
    expect(grown.length).toBeGreaterThanOrEqual(626);
    expect(members(grown)).toEqual([1, 2, 5000]);
  });

  it('orInto unions, growing the target when the source is longer', () => {
    const target = bitmapWith(null, [1, 3]);
    const source = bitmapWith(null, [3, 64, 65]);
    const union = orInto(target, source);
    expect(members(union)).toEqual([1, 3, 64, 65]);
    expect(members(source)).toEqual([3, 64, 65]);
  });

  it('orInto with a shorter source leaves the target length and adds its bits', () => {
    const target = bitmapWith(null, [200]);
    const union = orInto(target, bitmapWith(null, [0]));
    expect(union.length).toBe(target.length);
    expect(members(union)).toEqual([0, 200]);
  });

  it('popcount counts every bit of full bytes', () => {
    expect(popcount(Uint8Array.from([0xff, 0x00, 0x81, 0x10]))).toBe(8 + 0 + 2 + 1);
    expect(popcount(new Uint8Array(0))).toBe(0);
  });

  it('trimmed drops trailing zero bytes only', () => {
    expect([...trimmed(Uint8Array.from([0, 5, 0, 3, 0, 0]))]).toEqual([0, 5, 0, 3]);
    expect([...trimmed(new Uint8Array(16))]).toEqual([]);
  });

  it('agrees with a Set over random unions', () => {
    const random = seededRandom(42);
    for (let round = 0; round < 50; round++) {
      const a = Array.from({ length: random(40) }, () => random(3000));
      const b = Array.from({ length: random(40) }, () => random(3000));
      const union = trimmed(orInto(bitmapWith(null, a), bitmapWith(null, b)));
      const expected = [...new Set([...a, ...b])].sort((x, y) => x - y);
      expect(members(union)).toEqual(expected);
      expect(popcount(union)).toBe(expected.length);
    }
  });

  it('encodeUserSet picks the smaller form: a list for few high users, a plain bitmap for dense ones', () => {
    const sparse = encodeUserSet(bitmapWith(null, [90_000, 12]));
    expect(sparse[0]).toBe(1);
    expect(sparse.length).toBe(1 + 2 * 4);
    const dense = encodeUserSet(bitmapWith(null, [0, 1, 2, 3, 4, 5, 6, 7, 9]));
    expect(dense[0]).toBe(0);
    expect(dense.length).toBe(1 + 2);
    expect([...encodeUserSet(new Uint8Array(8))]).toEqual([0]);
  });

  it('decodeUserSet round-trips both forms against a Set, at any byte offset', () => {
    const random = seededRandom(7);
    const forms = new Set<string>();
    for (let round = 0; round < 50; round++) {
      const a = Array.from({ length: random(60) }, () => random(round % 2 ? 100 : 100_000));
      const b = Array.from({ length: random(60) }, () => random(5000));
      // Stored values arrive as slices of a network buffer: an odd offset must work too.
      const encoded = encodeUserSet(bitmapWith(null, a));
      const shifted = new Uint8Array(encoded.length + 1);
      shifted.set(encoded, 1);
      const users = decodeUserSet(shifted.subarray(1));
      forms.add(users.constructor.name);
      // A buffer of its own, word-aligned: the cache keeps it and the OR runs on words.
      expect(users.buffer).not.toBe(shifted.buffer);
      expect(users.byteOffset % 8).toBe(0);
      const expectedA = [...new Set(a)].sort((x, y) => x - y);
      expect(userSetSize(users)).toBe(expectedA.length);
      for (const i of [...expectedA, 0, 1, 99, 4999, 99_999])
        expect(userSetHas(users, i)).toBe(expectedA.includes(i));
      const union = orUserSetInto(bitmapWith(null, b), users);
      const expected = [...new Set([...a, ...b])].sort((x, y) => x - y);
      expect(members(union)).toEqual(expected);
    }
    expect([...forms].sort()).toEqual(['Uint32Array', 'Uint8Array']);
    const nothing = decodeUserSet(new Uint8Array(0));
    expect(userSetSize(nothing)).toBe(0);
    expect(members(orUserSetInto(bitmapWith(null, [4]), nothing))).toEqual([4]);
  });

  it('decodeUserSet pads a plain bitmap to whole 8-byte words', () => {
    const users = decodeUserSet(Uint8Array.from([0, 0xff, 0x01]));
    expect(users).toBeInstanceOf(Uint8Array);
    expect([...users]).toEqual([0xff, 0x01, 0, 0, 0, 0, 0, 0]);
  });
});

describe('RateLimiter', () => {
  const t0 = 1_000_000;

  it('allows a burst up to the limit, then refuses with Retry-After of at least 1 s', () => {
    const limiter = new RateLimiter(3, 100);
    const decisions = [0, 1, 2, 3].map(() => limiter.take('a', t0));
    expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
    expect(decisions[3]!.limit).toBe(3);
    // 3 per minute: the next token is 20 s away.
    expect(decisions[3]!.retryAfterSeconds).toBe(20);
    expect(decisions[3]!.resetSeconds).toBe(60);
  });

  it('never answers a Retry-After below 1 s, even just before a token frees', () => {
    const limiter = new RateLimiter(60, 100);
    for (let i = 0; i < 60; i++) limiter.take('a', t0);
    const refused = limiter.take('a', t0 + 999);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterSeconds).toBe(1);
  });

  it('refills over time at limit per minute, never above the limit', () => {
    const limiter = new RateLimiter(3, 100);
    for (let i = 0; i < 3; i++) limiter.take('a', t0);
    expect(limiter.take('a', t0 + 19_000).allowed).toBe(false);
    expect(limiter.take('a', t0 + 20_000)).toMatchObject({ allowed: true, remaining: 0 });
    // An hour idle refills to the limit and no further.
    const later = t0 + 3_600_000;
    expect([0, 1, 2, 3].map(() => limiter.take('a', later).allowed)).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it('never limits one client because another is limited', () => {
    const limiter = new RateLimiter(2, 100);
    for (let i = 0; i < 5; i++) limiter.take('noisy', t0);
    expect(limiter.take('noisy', t0).allowed).toBe(false);
    expect([limiter.take('quiet', t0), limiter.take('quiet', t0)]).toMatchObject([
      { allowed: true, remaining: 1 },
      { allowed: true, remaining: 0 },
    ]);
  });

  it('forgets the least recently seen client when maxClients is reached', () => {
    const limiter = new RateLimiter(1, 2);
    expect(limiter.take('a', t0).allowed).toBe(true);
    expect(limiter.take('a', t0).allowed).toBe(false);
    limiter.take('b', t0);
    limiter.take('a', t0); // a is now the most recently seen, b the least
    limiter.take('c', t0); // evicts b
    expect(limiter.take('a', t0).allowed).toBe(false);
    limiter.take('d', t0); // evicts c
    limiter.take('e', t0); // evicts a: forgotten, so it starts again with a full bucket
    expect(limiter.take('a', t0).allowed).toBe(true);
  });

  it('reports itself disabled at 0 per minute', () => {
    expect(new RateLimiter(0, 10).enabled).toBe(false);
    expect(new RateLimiter(1, 10).enabled).toBe(true);
  });
});

describe('canonicalTimeZone', () => {
  it('folds spellings and aliases to one zone, so spellings cannot multiply what is kept', () => {
    const kolkata = canonicalTimeZone('Asia/Kolkata');
    expect(kolkata).toBeDefined();
    expect(canonicalTimeZone('ASIA/kolkata')).toBe(kolkata);
    expect(canonicalTimeZone('Asia/Calcutta')).toBe(kolkata);
    expect(canonicalTimeZone('Mars/Olympus_Mons')).toBeUndefined();
  });
});
