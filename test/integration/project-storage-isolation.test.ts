// Everything stored belongs to one project: random events go into three projects — through the
// writer's path, with batches that mix projects, the same event_ids and the same name/user/second
// in several of them — with rollup refreshes at random points. Each project's metrics (through one
// answer cache and one cell cache shared by all projects) must equal an oracle over that project's
// rows only, and its export exactly the events a model of per-project idempotency says it stored.
import fc from 'fast-check';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerMetrics } from '../../src/metrics/answer-metrics.js';
import { CellBitmapCache } from '../../src/metrics/cell-bitmap-cache.js';
import { MetricsCache } from '../../src/metrics/metrics-cache.js';
import { openEventExport } from '../../src/sql/export-events.js';
import { refreshRollup } from '../../src/sql/refresh-rollup.js';
import type { IncomingEvent } from '../../src/validation/validate-events.js';
import { EventOutcome } from '../../src/workers/insert-batch-messages.js';
import { insertGroups } from '../../src/workers/insert-groups.js';
import {
  createTestDatabase,
  queuedPool,
  servicePool,
  type TestDatabase,
} from '../helpers/database.js';
import {
  metricsOracle,
  metricsQueryOf,
  numbersOf,
  type MetricsNumbers,
} from '../helpers/metrics-oracle.js';

const secondsPerDay = 86_400;
/** 2023-09-09 UTC, three days. */
const spanStart = 19_610 * secondsPerDay;
const spanDays = 3;
const eventNames = ['view', 'buy'] as const;
const channels = ['web', 'ios'] as const;

let db: TestDatabase;
let pool: pg.Pool;
/** Three projects besides the default one. */
let projects: number[];
/** Shared by every project and run, as the server's is: entries are checked by row version. */
const cellBitmaps = new CellBitmapCache(64 * 1024 * 1024);

beforeAll(async () => {
  db = await createTestDatabase();
  pool = servicePool(db.dsn, 'pulse-project-isolation-test', 4);
  const rows = await db.query<{ id: number }>(
    "INSERT INTO projects (name) VALUES ('alpha'), ('beta'), ('gamma') RETURNING id",
  );
  projects = rows.map((r) => r.id);
});
afterAll(async () => {
  await pool?.end();
  await db?.close();
});

// Few ids, names, users and seconds: the same key turns up in several projects and twice in one.
const eventSpec = fc.record({
  id: fc.option(fc.nat(6), { freq: 2 }),
  name: fc.constantFrom(...eventNames),
  channel: fc.constantFrom<string | undefined>(...channels, undefined),
  user: fc.constantFrom('u0', 'u1', 'u2', 'u3'),
  second: fc.oneof(
    fc.constantFrom(0, 3600, secondsPerDay - 1, secondsPerDay, 2 * secondsPerDay + 1800),
    fc.integer({ min: 0, max: spanDays * secondsPerDay - 1 }),
  ),
});
const request = fc.record({
  project: fc.nat(2),
  events: fc.array(eventSpec, { minLength: 1, maxLength: 8 }),
});
type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;
/** A batch of requests, or null: a refresh. */
const step = fc.oneof(
  { weight: 3, arbitrary: fc.array(request, { minLength: 1, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constant(null) },
);

const window = fc
  .tuple(
    fc.integer({ min: spanStart - 3600, max: spanStart + spanDays * secondsPerDay }),
    fc.integer({ min: 0, max: spanDays * secondsPerDay }),
  )
  .map(([from, length]) => ({ from, to: from + length }));
const querySpec = fc.record({
  window: fc.oneof(
    window,
    fc.constant({ from: spanStart, to: spanStart + spanDays * secondsPerDay - 1 }),
  ),
  eventName: fc.constantFrom<string | null>(null, ...eventNames),
  channel: fc.constantFrom<string | null>(null, ...channels),
  groupByDay: fc.boolean(),
});

/** One project's truth, straight from its raw rows. */
const oracle = (projectId: number, q: ValueOf<typeof querySpec>) =>
  metricsOracle(db, { ...q.window, ...q }, projectId);

/** Every line of one project's export of the whole span, without received_at, sorted. */
async function exported(projectId: number): Promise<string[]> {
  const stream = await openEventExport(
    pool,
    projectId,
    { from: 0, to: spanStart + 10 * secondsPerDay, eventName: null, channel: null },
    { readMs: 10_000, readBackstopMs: 20_000, idleMs: 10_000 },
  );
  const lines: string[] = [];
  try {
    for (let text = await stream.read(500); text !== ''; text = await stream.read(500))
      lines.push(...text.trimEnd().split('\n'));
  } finally {
    await stream.close();
  }
  return lines.map((line) => exportShape(JSON.parse(line) as Record<string, unknown>)).sort();
}

function exportShape({ received_at: _, ...event }: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(event).sort()));
}

let run = 0;

describe('project isolation in storage', () => {
  it('answers and exports each project from its own rows only, with idempotency per project', async () => {
    // What each project stores under per-project idempotency: the first event of each key.
    const model = new Map<number, Map<string, IncomingEvent>>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 5 }),
        fc.array(querySpec, { minLength: 1, maxLength: 6 }),
        async (steps, queries) => {
          const runId = run++;
          for (const s of steps) {
            if (s === null) {
              await refreshRollup(pool);
              continue;
            }
            const events: IncomingEvent[] = [];
            const starts: number[] = [];
            const projectIds: number[] = [];
            const expected: number[] = [];
            for (const r of s) {
              const projectId = projects[r.project]!;
              const stored = model.get(projectId) ?? new Map<string, IncomingEvent>();
              model.set(projectId, stored);
              starts.push(events.length);
              projectIds.push(projectId);
              for (const spec of r.events) {
                const event: IncomingEvent = {
                  event_name: spec.name,
                  user_id: spec.user,
                  timestamp: spanStart + spec.second,
                  ...(spec.id === null ? {} : { event_id: `run${runId}-${spec.id}` }),
                  ...(spec.channel === undefined ? {} : { channel: spec.channel }),
                };
                const key =
                  event.event_id ?? `${event.event_name}/${event.user_id}/${event.timestamp}`;
                expected.push(stored.has(key) ? EventOutcome.duplicate : EventOutcome.inserted);
                if (!stored.has(key)) stored.set(key, event);
                events.push(event);
              }
            }
            starts.push(events.length);
            const result = await insertGroups(pool, events, { projectIds, starts });
            expect(result.kind === 'done' && [...result.outcomes]).toEqual(expected);
          }
          // One answer cache for all projects: a key without the project would answer another's.
          const cache = new MetricsCache({ ttlMs: 60_000, maxKeys: 10_000 });
          const sources = { pool: queuedPool(pool), cache, cellBitmaps };
          try {
            for (const projectId of projects) {
              const answers = [];
              const truths = [];
              for (const q of queries) {
                const { answer } = await answerMetrics(
                  sources,
                  projectId,
                  metricsQueryOf({ ...q.window, ...q }),
                );
                answers.push(numbersOf(JSON.parse(answer.dataJson) as MetricsNumbers));
                truths.push(await oracle(projectId, q));
              }
              expect(answers).toEqual(truths);
            }
          } finally {
            cache.close();
          }
        },
      ),
      // The database keeps every run's events: shrinking would not make a case smaller.
      { numRuns: 25, endOnFailure: true },
    );
    for (const projectId of projects) {
      const expected = [...(model.get(projectId)?.values() ?? [])].map((e) =>
        exportShape({ ...e }),
      );
      expect(await exported(projectId)).toEqual(expected.sort());
    }
    // Not vacuous: the projects share keys, and each holds rows the others do not.
    const [shared] = await db.query<{ ids: number; projects: number }>(
      `SELECT count(*)::int AS ids, count(DISTINCT project_id)::int AS projects FROM events
       WHERE event_id IN (SELECT event_id FROM events GROUP BY 1 HAVING count(DISTINCT project_id) > 1)`,
    );
    expect(shared!.ids).toBeGreaterThan(10);
    expect(shared!.projects).toBe(3);
    expect(await exported(1)).toEqual([]);
  });
});
