// GET /metrics in local time equals SQL over the raw rows: seeded random events packed around the
// 2024 clock changes of New York, Berlin and Lord Howe (30 minutes) and around the day boundaries
// of Kolkata (+5:30) and Kathmandu (+5:45), asked for by every group_by × tz × fill × breakdown,
// with windows cut at arbitrary seconds: before any refresh (raw rows only), after one (cells),
// with more events after it (cells plus the raw tail), and after a second one (changed cells).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { postJson, type TestEvent } from '../helpers/events.js';
import {
  localMetricsOracle,
  localMetricsSearchParams,
  oracleServerEnv,
  type GroupBy,
  type LocalMetricsAnswer,
  type LocalOracleQuery,
} from '../helpers/metrics-oracle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const hour = 3600;
const day = 86_400;
const utc = (y: number, mo: number, d: number, h = 0, mi = 0) =>
  Date.UTC(y, mo - 1, d, h, mi) / 1000;

/** Per zone, two instants (UTC) the events crowd around: its 2024 clock changes, or for a zone
 *  without one, a local midnight that also starts a month. */
const spots = {
  UTC: [utc(2024, 7, 1), utc(2024, 10, 1)],
  'America/New_York': [utc(2024, 3, 10, 7), utc(2024, 11, 3, 6)],
  'Europe/Berlin': [utc(2024, 3, 31, 1), utc(2024, 10, 27, 1)],
  'Asia/Kolkata': [utc(2024, 1, 31, 18, 30), utc(2024, 6, 14, 18, 30)],
  'Asia/Kathmandu': [utc(2024, 5, 31, 18, 15), utc(2024, 8, 31, 18, 15)],
  'Australia/Lord_Howe': [utc(2024, 4, 6, 15), utc(2024, 10, 5, 15, 30)],
} as const;
type Zone = keyof typeof spots;
const zones = Object.keys(spots) as Zone[];
const clockChanges = zones.filter((z) => !['UTC', 'Asia/Kolkata', 'Asia/Kathmandu'].includes(z));
const allSpots = zones.flatMap((z) => spots[z]);

/** mulberry32: a failure reproduces from the same seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const eventNames = ['view', 'click', 'buy', 'Sign up', 'é-open'];
const channels = ['web', 'ios', 'Web', 'android', undefined];
/** Seconds from a spot that sit on a minute, half-hour or hour edge, or one second before it. */
const edgeOffsets = [0, 60, 900, 1800, 2700, 3600, 7200];

function randomEvents(seed: number, n: number, tag: string): TestEvent[] {
  const rand = seededRandom(seed);
  const int = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() ** 1.5 * items.length)]!;
  const when = (): number => {
    const spot = allSpots[int(0, allSpots.length - 1)]!;
    const r = rand();
    if (r < 0.25) return int(utc(2023, 12, 1), utc(2025, 1, 31));
    if (r < 0.55) return spot + int(-36 * hour, 36 * hour);
    if (r < 0.75) return spot + int(-2 * hour, 2 * hour);
    return spot + (rand() < 0.5 ? -1 : 1) * pick(edgeOffsets) - int(0, 1);
  };
  return Array.from({ length: n }, (_, i) => {
    const channel = pick(channels);
    // Skewed towards the first users: they repeat, so unique_users is well below count.
    const event: TestEvent = {
      event_id: `${tag}-${i}`,
      event_name: pick(eventNames),
      user_id: `user-${int(0, 3) === 0 ? int(0, 199) : int(0, 24)}`,
      timestamp: when(),
    };
    if (channel !== undefined) event.channel = channel;
    return event;
  });
}

/** Every group_by × tz × fill × breakdown, week also starting on Sunday; windows at arbitrary
 *  seconds, a few days for hours, weeks for days, months for weeks, a year for months. */
function combinations(): LocalOracleQuery[] {
  const rand = seededRandom(16);
  const int = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
  const halfWidth: Record<Exclude<GroupBy, 'month'>, number> = {
    hour: 30 * hour,
    day: 10 * day,
    week: 45 * day,
  };
  const queries: LocalOracleQuery[] = [];
  for (const tz of zones)
    for (const groupBy of ['hour', 'day', 'week', 'month'] as const)
      for (const weekStart of groupBy === 'week' ? (['monday', 'sunday'] as const) : [null])
        for (const fill of ['none', 'zero'] as const)
          for (const breakdown of [null, 'event_name', 'channel'] as const) {
            const i = queries.length;
            const spot = spots[tz][i % 2]!;
            const window =
              groupBy === 'month'
                ? {
                    from: utc(2024, 1, 1) + int(0, 20 * day),
                    to: utc(2024, 12, 1) + int(0, 29 * day),
                  }
                : {
                    from: spot - halfWidth[groupBy] - int(0, day),
                    to: spot + halfWidth[groupBy] + int(0, day),
                  };
            queries.push({
              ...window,
              eventName: i % 7 === 3 ? 'view' : null,
              channel: i % 7 === 5 ? 'web' : null,
              groupBy,
              // The defaults are also asked for by name now and then.
              tz: tz === 'UTC' && i % 2 === 0 ? null : tz,
              weekStart: weekStart === 'monday' && i % 2 === 0 ? null : weekStart,
              fill: fill === 'none' && i % 3 === 0 ? null : fill,
              breakdown,
              limit: breakdown === null ? null : [null, 1, 2, 3][i % 4]!,
            });
          }
  return queries;
}

const queries = combinations();

let db: TestDatabase;
let server: TestServer;
let oracle: ReturnType<typeof localMetricsOracle>;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, { ...oracleServerEnv, BULK_MAX_EVENTS: '500' });
  oracle = localMetricsOracle(db);
  await sendEvents(randomEvents(2024, 3000, 'first'));
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

async function sendEvents(events: TestEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 500) {
    const res = await postJson(`${server.url}/events/bulk`, { events: events.slice(i, i + 500) });
    if (res.status !== 202) throw new Error(`bulk ${res.status}: ${JSON.stringify(res.body)}`);
  }
}

async function refresh(): Promise<void> {
  await server.service.refresher.refreshNow();
  // refreshNow logs a failure instead of throwing: only a success sets the lag.
  expect(server.service.refresher.lagSeconds).toBeLessThan(60);
}

async function fetchMetrics(q: LocalOracleQuery): Promise<LocalMetricsAnswer> {
  const res = await fetch(`${server.url}/metrics?${localMetricsSearchParams(q).toString()}`);
  const body = (await res.json()) as LocalMetricsAnswer & { as_of?: number; cached?: boolean };
  if (res.status !== 200) throw new Error(`GET /metrics ${res.status}: ${JSON.stringify(body)}`);
  if (body.cached !== false) throw new Error('METRICS_CACHE_TTL_MS=0 answered from cache');
  delete body.as_of;
  delete body.cached;
  return body;
}

/** Every combination against the oracle, four requests at a time. */
async function expectEveryCombinationExact(): Promise<void> {
  const answers: { query: string; answer: LocalMetricsAnswer }[] = [];
  const truths: typeof answers = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < queries.length; i = next++) {
      const q = queries[i]!;
      const query = localMetricsSearchParams(q).toString();
      answers[i] = { query, answer: await fetchMetrics(q) };
      truths[i] = { query, answer: await oracle(q) };
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  expect(answers).toEqual(truths);
  // Not vacuous: rests with events, events without a channel, empty buckets, repeating users.
  const seen = truths.map((t) => t.answer);
  expect({
    otherWithEvents: seen.some((a) => (a.breakdown?.other.count ?? 0) > 0),
    noChannel: seen.some((a) => a.breakdown?.values.some((v) => v.value === null)),
    emptyBucket: seen.some((a) => a.buckets?.some((b) => b.count === 0)),
    repeatingUser: seen.some((a) => a.buckets?.some((b) => b.unique_users < b.count)),
  }).toEqual({ otherWithEvents: true, noChannel: true, emptyBucket: true, repeatingUser: true });
}

describe('GET /metrics in local time against SQL over the raw rows', () => {
  it('asks every group_by × tz × fill × breakdown, over events that straddle each clock change', async () => {
    expect(queries).toHaveLength(180);
    const rows = await db.query<{ zone: string; spot: number; changes: boolean; near: number }>(
      `SELECT zone, spot,
              (to_timestamp(spot - 1) AT TIME ZONE zone) - (to_timestamp(spot - 1) AT TIME ZONE 'UTC')
                <> (to_timestamp(spot) AT TIME ZONE zone) - (to_timestamp(spot) AT TIME ZONE 'UTC')
                AS changes,
              (SELECT count(*)::int FROM events
               WHERE extract(epoch FROM occurred_at) BETWEEN spot - 3600 AND spot + 3599) AS near
       FROM unnest($1::text[], $2::int[]) AS s(zone, spot)`,
      [clockChanges.flatMap((z) => [z, z]), clockChanges.flatMap((z) => spots[z])],
    );
    expect(rows.map((r) => r.changes)).toEqual(rows.map(() => true));
    for (const r of rows) expect(r.near, `${r.zone} ${r.spot}`).toBeGreaterThan(30);
  });

  it('answers every combination exactly before any refresh, from the raw rows alone', async () => {
    expect(server.service.refresher.lagSeconds).toBeUndefined();
    await expectEveryCombinationExact();
  });

  it('answers every combination exactly after a refresh, from the rollup', async () => {
    await refresh();
    await expectEveryCombinationExact();
  });

  it('answers every combination exactly with events sent after the refresh, from both', async () => {
    await sendEvents(randomEvents(2025, 600, 'second'));
    await expectEveryCombinationExact();
  });

  it('answers every combination exactly once a second refresh changes the cells it has read', async () => {
    await refresh();
    await expectEveryCombinationExact();
  });
});

describe('GET /metrics window edges on events', () => {
  it('counts the events on the first and the last second of a window that cuts half hours', async () => {
    const [edges] = await db.query<{ first: number; last: number }>(
      `SELECT min(t)::int AS first, max(t)::int AS last
       FROM (SELECT extract(epoch FROM occurred_at) AS t FROM events
             WHERE extract(epoch FROM occurred_at) BETWEEN $1 - 5400 AND $1 + 5400) AS near`,
      [spots['Asia/Kathmandu'][0]],
    );
    const { first, last } = edges!;
    const edgeQueries = (
      ['Asia/Kathmandu', 'Asia/Kolkata', 'Australia/Lord_Howe'] as const
    ).flatMap((tz) =>
      (['hour', 'day'] as const).map((groupBy): LocalOracleQuery => ({
        ...{ from: first, to: last, groupBy, tz, fill: 'zero', breakdown: 'channel' },
        ...{ eventName: null, channel: null, weekStart: null, limit: 2 },
      })),
    );
    const answers = await Promise.all(edgeQueries.map(fetchMetrics));
    expect(answers).toEqual(await Promise.all(edgeQueries.map(oracle)));
    const [onEdges] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM events WHERE extract(epoch FROM occurred_at) IN ($1, $2)`,
      [first, last],
    );
    expect(onEdges!.n).toBeGreaterThanOrEqual(2);
  });
});

describe('GET /metrics bucket edges pinned by hand', () => {
  /** The bucket starts the server answers with fill=zero, checked against the oracle's. */
  const starts = async (
    from: number,
    to: number,
    groupBy: GroupBy,
    tz: string,
    weekStart: LocalOracleQuery['weekStart'] = null,
  ) => {
    const q: LocalOracleQuery = {
      ...{ from, to, groupBy, tz, weekStart, fill: 'zero' },
      ...{ eventName: null, channel: null, breakdown: null, limit: null },
    };
    const answered = (await fetchMetrics(q)).buckets!.map((b) => b.bucket_start);
    expect(answered).toEqual((await oracle(q)).buckets!.map((b) => b.bucket_start));
    return answered;
  };

  it.each([
    ['fall-back', utc(2024, 4, 6, 15)],
    ['spring-forward', utc(2024, 10, 5, 15, 30)],
  ])(
    'cuts Lord Howe hours at its %s shift: a 30-minute bucket from the shift',
    async (_, shift) => {
      const got = await starts(
        shift - 2 * hour,
        shift + 2 * hour - 1,
        'hour',
        'Australia/Lord_Howe',
      );
      expect(got.map((s) => s - shift)).toEqual([-2 * hour, -hour, 0, hour / 2, 1.5 * hour]);
    },
  );

  it("answers New York's fall-back 01:00 as two hour buckets, one per offset", async () => {
    const shift = utc(2024, 11, 3, 6);
    const got = await starts(shift - hour, shift + hour - 1, 'hour', 'America/New_York');
    expect(got).toEqual([shift - hour, shift]);
  });

  it('makes New York days of 23 and 25 hours at its clock changes', async () => {
    const newYork = 'America/New_York';
    const spring = await starts(utc(2024, 3, 9, 5), utc(2024, 3, 11, 4) + day - 1, 'day', newYork);
    const fall = await starts(utc(2024, 11, 2, 4), utc(2024, 11, 4, 5) + day - 1, 'day', newYork);
    const lengths = (s: number[]) => s.slice(1).map((t, i) => (t - s[i]!) / hour);
    expect([lengths(spring), lengths(fall)]).toEqual([
      [24, 23],
      [24, 25],
    ]);
  });

  it("starts Havana's day without a midnight at the instant its clock jumps", async () => {
    const got = await starts(utc(2024, 3, 10, 12), utc(2024, 3, 10, 13), 'day', 'America/Havana');
    expect(got).toEqual([utc(2024, 3, 10, 5)]);
  });

  it('starts a Kathmandu day at 18:15 UTC, before a from later in the day', async () => {
    const got = await starts(
      utc(2024, 6, 1, 9, 7) + 13,
      utc(2024, 6, 1, 9, 8),
      'day',
      'Asia/Kathmandu',
    );
    expect(got).toEqual([utc(2024, 5, 31, 18, 15)]);
  });

  it.each([
    ['Almaty 2024 (+6 → +5, the first change since 2005)', 'Asia/Almaty', utc(2022, 6, 1)],
    ['Moscow 2014 (+4 → +3, three years after the last)', 'Europe/Moscow', utc(2012, 6, 1)],
    [
      'Kathmandu 1986 (+5:30 → +5:45, the first change since 1920)',
      'Asia/Kathmandu',
      utc(1984, 6, 1),
    ],
  ])('follows an offset change more than a year after the one before: %s', async (_, tz, from) => {
    const got = await starts(from, from + 3 * 365 * day, 'month', tz);
    // Not vacuous: the months begin at two different times of day, before and after the change.
    expect(new Set(got.map((s) => s % day)).size).toBe(2);
  });

  it('starts a Monrovia day of 1971 at 00:44:30 UTC: an offset of seconds', async () => {
    const q: LocalOracleQuery = {
      ...{
        from: utc(1971, 6, 1, 12),
        to: utc(1971, 6, 2, 12),
        groupBy: 'day',
        tz: 'Africa/Monrovia',
      },
      ...{
        eventName: null,
        channel: null,
        weekStart: null,
        fill: 'zero',
        breakdown: null,
        limit: null,
      },
    };
    const got = (await fetchMetrics(q)).buckets!.map((b) => b.bucket_start);
    expect(got).toEqual([utc(1971, 6, 1, 0, 44) + 30, utc(1971, 6, 2, 0, 44) + 30]);
  });

  it("skips Apia's 30 December 2011, a day its calendar never had", async () => {
    const got = await starts(
      utc(2011, 12, 29, 10),
      utc(2011, 12, 31, 10) - 1,
      'day',
      'Pacific/Apia',
    );
    expect(got).toEqual([utc(2011, 12, 29, 10), utc(2011, 12, 30, 10)]);
  });

  it("starts New York's first day of 1970 before the epoch", async () => {
    expect(await starts(0, day - 1, 'day', 'America/New_York')).toEqual([-19 * hour, 5 * hour]);
  });

  it('starts Sunday weeks and months at local midnight in Kolkata', async () => {
    const monday = utc(2024, 2, 12);
    const kolkata = 'Asia/Kolkata';
    expect([
      await starts(monday, monday + 1, 'week', kolkata, 'sunday'),
      await starts(monday, monday + 1, 'month', kolkata),
    ]).toEqual([[utc(2024, 2, 10, 18, 30)], [utc(2024, 1, 31, 18, 30)]]);
  });
});
