// The events stream reads a committed row only if its subscribers' cap can pass it: with one
// unfiltered topic, keys are admitted up to the tokens left, counting the keys already waiting or
// being read. Without the keys being read, every announcement made while a read was out was
// admitted against a full bucket: under bulk load (announcements every 20 ms, slow reads) the
// process read several times the rows it delivered.
import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { WebSocket } from 'uWebSockets.js';
import { EventFanout } from '../../src/live/event-fanout.js';
import type { QueuedPool } from '../../src/sql/queued-pool.js';
import { createTestDatabase, servicePool, type TestDatabase } from '../helpers/database.js';
import { waitUntil } from '../helpers/wait-until.js';

const cap = 100;
const commits = 50;
const keysPerCommit = 20;
let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = servicePool(db.dsn, 'pulse-live-event-reads');
  await db.query(
    `INSERT INTO events (project_id, idem_key, event_id, event_name, user_id, occurred_at)
     SELECT 1, md5('k' || n)::uuid, n::text, 'view', 'u' || n, now()
     FROM generate_series(0, ${commits * keysPerCommit - 1}) AS n`,
  );
});
afterAll(async () => {
  await pool?.end();
  await db?.close();
});

it('reads no more committed rows than the cap lets through', async () => {
  const keys = await db.query<{ key: string }>(
    `SELECT md5('k' || n)::uuid::text AS key FROM generate_series(0, ${commits * keysPerCommit - 1}) AS n ORDER BY n`,
  );
  let keysRead = 0;
  // The real pool, its reads counted on their way.
  const countingPool = {
    query: (config: pg.QueryConfig<[number, string[]]>) => {
      keysRead += config.values![1].length;
      return pool.query(config);
    },
  } as unknown as QueuedPool;
  let delivered = 0;
  const fanout = new EventFanout({
    pool: countingPool,
    publish: () => delivered++,
    eventsPerSecond: cap,
    log: { warn: () => undefined },
  });
  const socket = { subscribe: () => true } as unknown as WebSocket<unknown>;
  const topic = fanout.join(socket, 1, null, null);
  const startedAt = performance.now();
  for (let c = 0; c < commits; c++) {
    const batch = keys.slice(c * keysPerCommit, (c + 1) * keysPerCommit);
    fanout.committed({ projectId: 1, keys: batch.map((k) => k.key).join('') });
  }
  await waitUntil(
    'every committed key delivered or dropped',
    () => delivered + topic.droppedTotal === commits * keysPerCommit,
    { timeoutMs: 10_000 },
  );
  const seconds = (performance.now() - startedAt) / 1000;
  fanout.close();
  // One second's burst, then the rate while the commits came.
  const passable = cap + Math.ceil(cap * seconds);
  expect(delivered).toBeLessThanOrEqual(passable);
  expect(keysRead).toBeLessThanOrEqual(passable);
  expect(keysRead).toBeGreaterThanOrEqual(delivered);
});
