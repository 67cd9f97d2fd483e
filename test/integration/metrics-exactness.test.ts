// GET /metrics always equals the raw-table truth: a property test sends random events (duplicates,
// late events for days the rollup already absorbed, events without a channel) with rollup refreshes
// at random points, then compares random windows × filters × group_by with an oracle query on the
// same database. The oracle is written independently of src/sql/read-metrics.ts: one plain scan.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson, type TestEvent } from '../helpers/events.js';
import {
  metricsOracle,
  metricsSearchParams,
  type MetricsNumbers,
  type OracleQuery,
} from '../helpers/metrics-oracle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const secondsPerDay = 86_400;
/** 2023-08-30 UTC: far enough in the past for any clock. */
const firstDay = 19_600;
const spanDays = 10;
const spanStart = firstDay * secondsPerDay;
const spanEnd = (firstDay + spanDays) * secondsPerDay - 1;

const eventNames = ['view', 'click', 'buy'] as const;
const channels = ['web', 'ios'] as const;
const users = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'user 🦊', 'user-ü'] as const;
/** Seconds of a day that sit on the edges the windows below use, plus any second. */
const secondOfDay = fc.oneof(
  fc.constantFrom(0, 1, 10 * 3600 - 1, 10 * 3600, 14 * 3600, 14 * 3600 + 1, 86_398, 86_399),
  fc.integer({ min: 0, max: secondsPerDay - 1 }),
);

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, {
    METRICS_CACHE_TTL_MS: '0',
    RATE_LIMIT_METRICS_PER_MIN: '0',
    // Only the refreshes the test asks for: the schedule would make runs irreproducible.
    ROLLUP_REFRESH_MS: '3600000',
    INGEST_WORKERS: '1',
  });
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

interface EventSpec {
  readonly id: number | null;
  readonly name: string;
  readonly channel: string | undefined;
  readonly user: string;
  readonly day: number;
  readonly second: number;
}

const eventSpec = fc.record({
  // A small id range: the same id twice in one run is a duplicate (stored once, first one wins).
  id: fc.option(fc.nat(40), { freq: 4 }),
  name: fc.constantFrom(...eventNames),
  channel: fc.constantFrom<string | undefined>(...channels, undefined),
  user: fc.constantFrom(...users),
  day: fc.integer({ min: 0, max: spanDays - 1 }),
  second: secondOfDay,
});

type Step =
  | { readonly kind: 'send'; readonly events: EventSpec[] }
  | { readonly kind: 'resend'; readonly which: number }
  | { readonly kind: 'refresh' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      events: fc.array(eventSpec, { minLength: 1, maxLength: 25 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('resend' as const), which: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('refresh' as const) }) },
);

interface Window {
  readonly from: number;
  readonly to: number;
}

const at = (day: number, second: number) => spanStart + day * secondsPerDay + second;
const dayIndex = fc.integer({ min: 0, max: spanDays - 1 });
const window: fc.Arbitrary<Window> = fc.oneof(
  // A single second.
  fc.tuple(dayIndex, secondOfDay).map(([d, s]) => ({ from: at(d, s), to: at(d, s) })),
  // Part of one day.
  dayIndex.map((d) => ({ from: at(d, 10 * 3600), to: at(d, 14 * 3600) })),
  // Whole days.
  fc
    .tuple(dayIndex, dayIndex)
    .map(([a, b]) => ({ from: at(Math.min(a, b), 0), to: at(Math.max(a, b), 86_399) })),
  // Whole days plus one second of the next day / minus one of the first.
  fc.tuple(dayIndex, dayIndex).map(([a, b]) => ({
    from: at(Math.min(a, b), 0) + 1,
    to: at(Math.max(a, b), 0) + secondsPerDay,
  })),
  // Anything, reaching a day past both ends of the data.
  fc
    .tuple(
      fc.integer({ min: spanStart - secondsPerDay, max: spanEnd + secondsPerDay }),
      fc.integer({ min: spanStart - secondsPerDay, max: spanEnd + secondsPerDay }),
    )
    .map(([a, b]) => ({ from: Math.min(a, b), to: Math.max(a, b) })),
);

type MetricsQuerySpec = OracleQuery;

const querySpec: fc.Arbitrary<MetricsQuerySpec> = fc
  .record({
    window,
    eventName: fc.constantFrom<string | null>(null, ...eventNames, 'never-sent'),
    channel: fc.constantFrom<string | null>(null, ...channels, 'never-sent'),
    groupByDay: fc.boolean(),
  })
  .map(({ window: w, ...rest }) => ({ ...w, ...rest }));

async function fetchMetrics(q: MetricsQuerySpec): Promise<MetricsNumbers> {
  const res = await fetch(`${server.url}/metrics?${metricsSearchParams(q).toString()}`);
  const body = (await res.json()) as MetricsNumbers & { cached: boolean };
  if (res.status !== 200) throw new Error(`GET /metrics ${res.status}: ${JSON.stringify(body)}`);
  if (body.cached) throw new Error('METRICS_CACHE_TTL_MS=0 answered from cache');
  return body.buckets === undefined
    ? { totals: body.totals }
    : { totals: body.totals, buckets: body.buckets };
}

/** The truth, straight from the raw table. */
const oracle = (q: MetricsQuerySpec) => metricsOracle(db, q);

let run = 0;

function toEvent(spec: EventSpec, runId: number): TestEvent {
  const event: TestEvent = {
    event_name: spec.name,
    user_id: spec.user,
    timestamp: at(spec.day, spec.second),
  };
  if (spec.id !== null) event.event_id = `run${runId}-${spec.id}`;
  if (spec.channel !== undefined) event.channel = spec.channel;
  return event;
}

async function sendBulk(events: TestEvent[]): Promise<void> {
  const res = await postJson(`${server.url}/events/bulk`, { events });
  if (res.status !== 202) throw new Error(`bulk ${res.status}: ${JSON.stringify(res.body)}`);
}

describe('GET /metrics exactness', () => {
  it('equals count(*) and count(DISTINCT user_id) on the raw table for random events, refreshes and windows', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 6 }),
        fc.array(querySpec, { minLength: 1, maxLength: 8 }),
        async (steps, queries) => {
          const runId = run++;
          const sent: TestEvent[][] = [];
          for (const s of steps) {
            if (s.kind === 'refresh') {
              await server.service.refresher.refreshNow();
            } else if (s.kind === 'send') {
              const events = s.events.map((e) => toEvent(e, runId));
              sent.push(events);
              await sendBulk(events);
            } else if (sent.length > 0) {
              await sendBulk(sent[s.which % sent.length]!);
            }
          }
          const answers = [];
          const truths = [];
          for (const q of queries) {
            answers.push(await fetchMetrics(q));
            truths.push(await oracle(q));
          }
          expect(answers).toEqual(truths);
        },
      ),
      // 40 runs take ~2 s here. No shrinking: the database keeps every earlier run's events, so a
      // shrunk case is not smaller, only slower; the failure report holds the whole counterexample.
      { numRuns: 40, endOnFailure: true },
    );
    // The data piled up over all runs: make sure the property was not vacuous.
    const [stored] = await db.query<{ n: number; days: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT occurred_at::date)::int AS days FROM events',
    );
    expect(stored!.n).toBeGreaterThan(100);
    expect(stored!.days).toBe(spanDays);
  });

  it('answers the whole span exactly after a final refresh, per day and per filter', async () => {
    await server.service.refresher.refreshNow();
    const queries: MetricsQuerySpec[] = [];
    for (const eventName of [null, ...eventNames])
      for (const channel of [null, ...channels])
        queries.push({ from: spanStart, to: spanEnd, eventName, channel, groupByDay: true });
    const answers = await Promise.all(queries.map(fetchMetrics));
    const truths = await Promise.all(queries.map(oracle));
    expect(answers).toEqual(truths);
    expect(answers[0]!.buckets).toHaveLength(spanDays);
  });

  it('shows an event acknowledged durably in the very next uncached answer, without a refresh', async () => {
    const dayStart = at(3, 0);
    const q: MetricsQuerySpec = {
      from: dayStart,
      to: dayStart + secondsPerDay - 1,
      eventName: 'view',
      channel: 'web',
      groupByDay: true,
    };
    // The whole day is in the rollup now, so the new event can only come from the raw tail.
    await server.service.refresher.refreshNow();
    const before = await fetchMetrics(q);
    const event = makeEvent({
      event_name: 'view',
      channel: 'web',
      user_id: 'late-user-never-seen',
      timestamp: dayStart + 12 * 3600,
    });
    const res = await postJson(`${server.url}/events`, event);
    expect(res.body).toEqual({ status: 'stored', inserted: 1, duplicate: false });
    const after = await fetchMetrics(q);
    expect(after).toEqual({
      totals: { count: before.totals.count + 1, unique_users: before.totals.unique_users + 1 },
      buckets: [
        {
          bucket_start: dayStart,
          count: before.totals.count + 1,
          unique_users: before.totals.unique_users + 1,
        },
      ],
    });
    // And it stays counted once after the rollup absorbs it.
    await server.service.refresher.refreshNow();
    expect(await fetchMetrics(q)).toEqual(after);
  });

  it('answers a single second that holds one event, and the second after it empty', async () => {
    const t = at(7, 5 * 3600 + 17);
    await sendBulk([
      { event_name: 'buy', user_id: 'one-second-user', timestamp: t, channel: 'ios' },
    ]);
    await server.service.refresher.refreshNow();
    const q = (from: number): MetricsQuerySpec => ({
      from,
      to: from,
      eventName: 'buy',
      channel: 'ios',
      groupByDay: false,
    });
    const [exact, next] = [await fetchMetrics(q(t)), await fetchMetrics(q(t + 1))];
    expect([exact, next]).toEqual([await oracle(q(t)), await oracle(q(t + 1))]);
    expect(exact.totals.count).toBeGreaterThanOrEqual(1);
  });
});
