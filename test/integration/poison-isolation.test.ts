// A batch holding one unstorable request loses none of its neighbours. Validation keeps U+0000 out
// of every real request, so this drives the batcher and writer threads directly, past validation,
// against a real Postgres: the split-and-retry path is the defence in depth behind validation.
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batcher, type SubmitResult } from '../../src/ingest/batcher.js';
import { createWriterPool, type WriterPool } from '../../src/ingest/writer-pool.js';
import type { IncomingEvent } from '../../src/validation/validate-events.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import type { InsertBatchTask } from '../../src/workers/insert-batch-messages.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { readStoredIds } from '../helpers/load.js';

let db: TestDatabase;
let writers: WriterPool;
/** Group count of every batch handed to a writer thread, to prove the poison shared a batch. */
const batchGroupCounts: number[] = [];
let batcher: Batcher;

beforeAll(async () => {
  db = await createTestDatabase();
  const log = pino({ level: 'silent' });
  // One thread: everything submitted in one loop turn goes out as one batch.
  const pool = createWriterPool(
    1,
    {
      pool: {
        connectionString: db.dsn,
        applicationName: 'pulse-writer',
        max: 1,
        connectTimeoutMs: 5000,
        statementTimeoutMs: 10_000,
        queryTimeoutMs: 15_000,
      },
      logLevel: 'silent',
    },
    log,
    16 * 1024 * 1024,
  );
  // Observes what crosses into the thread; the thread, pg and Postgres are the real ones.
  writers = {
    concurrency: pool.concurrency,
    queueCapacity: pool.queueCapacity,
    utilization: () => pool.utilization(),
    close: () => pool.close(),
    run: (task: InsertBatchTask) => {
      batchGroupCounts.push(task.requests.length);
      return pool.run(task);
    },
  };
  batcher = new Batcher(
    writers,
    {
      queueMaxSize: 10_000,
      queueMaxBytes: 64 * 1024 * 1024,
      batchMaxSize: 1000,
      batchMaxBytes: 16 * 1024 * 1024,
      batchMaxWaitMs: 50,
      ingestTimeoutMs: 30_000,
      retryAfterSeconds: 1,
    },
    log,
    new Telemetry({
      queueDepth: () => 0,
      queueDepthBytes: () => 0,
      writerUtilization: () => 0,
      rollupLagSeconds: () => undefined,
      metricsCacheKeys: () => 0,
      metricsWaiting: () => 0,
    }),
  );
});
afterAll(async () => {
  await batcher.drain(5000);
  await writers.close();
  await db.close();
});

function event(overrides: Partial<IncomingEvent> = {}): IncomingEvent {
  return {
    event_id: randomUUID(),
    event_name: 'poison-test',
    user_id: 'u1',
    timestamp: 1_700_000_000,
    ...overrides,
  };
}

/** Submits every request in the same loop turn, so they share one batch. */
async function submitTogether(requests: IncomingEvent[][]): Promise<SubmitResult[]> {
  const before = batchGroupCounts.length;
  const results = await Promise.all(
    requests.map(async (events) =>
      batcher.submit({ json: JSON.stringify({ events }), eventCount: events.length }, 'durable'),
    ),
  );
  expect(batchGroupCounts.slice(before, before + 1)).toEqual([requests.length]);
  return results;
}

function outcomeSummary(result: SubmitResult): unknown {
  if (result.kind === 'failed')
    return {
      kind: 'failed',
      code: result.problem.code,
      retryAfter: result.problem.retryAfterSeconds,
    };
  return result;
}

describe('poison isolation', () => {
  it('stores every neighbour of a request whose user_id holds U+0000 in the same batch', async () => {
    const requests = Array.from({ length: 9 }, () => [event(), event(), event()]);
    requests[4] = [event(), event({ user_id: 'bad\u0000user' }), event()];
    const results = await submitTogether(requests);

    expect(results.map(outcomeSummary)).toEqual(
      requests.map((_, i) =>
        i === 4
          ? { kind: 'failed', code: 'unstorable_event', retryAfter: undefined }
          : { kind: 'stored', inserted: 3, duplicates: 0 },
      ),
    );
    const good = requests.filter((_, i) => i !== 4).flat();
    expect((await readStoredIds(db)).ids).toEqual(new Set(good.map((e) => e.event_id)));
  });

  it('isolates several poisoned requests at the edges and in the middle of one batch', async () => {
    const before = (await readStoredIds(db)).ids;
    const poisoned = new Set([0, 7, 15]);
    const requests = Array.from({ length: 16 }, (_, i) =>
      poisoned.has(i)
        ? [event(), event({ metadata: { note: 'nul \u0000 inside jsonb' } })]
        : [event(), event()],
    );
    // A neighbour repeating an id that is already stored must still be reported as a duplicate.
    const stored = [...before][0]!;
    requests[3] = [event({ event_id: stored }), event()];
    const results = await submitTogether(requests);

    expect(results.map(outcomeSummary)).toEqual(
      requests.map((_, i) =>
        poisoned.has(i)
          ? { kind: 'failed', code: 'unstorable_event', retryAfter: undefined }
          : { kind: 'stored', inserted: i === 3 ? 1 : 2, duplicates: i === 3 ? 1 : 0 },
      ),
    );
    const good = requests.filter((_, i) => !poisoned.has(i)).flat();
    expect((await readStoredIds(db)).ids).toEqual(
      new Set([...before, ...good.map((e) => e.event_id)]),
    );
  });
});
