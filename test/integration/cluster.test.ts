// CLUSTER_PROCESSES=2: two server processes on one port (SO_REUSEPORT) and one database store an
// overlapping stream exactly once and keep one rollup; a configuration over the database's
// connection limit is refused at start-up.
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/embedded/embedded-postgres.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { spawnServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.close();
});

/** POST on a fresh connection, so the kernel picks a process for every request. */
function postOnNewConnection(
  url: string,
  path: string,
  body: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      `${url}${path}`,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          connection: 'close',
        },
        timeout: 15_000,
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

describe('CLUSTER_PROCESSES', () => {
  it('runs two processes on one port that store an overlapping stream exactly once', async () => {
    const port = await freePort();
    const server = await spawnServer(db.dsn, {
      CLUSTER_PROCESSES: '2',
      PORT: String(port),
      INGEST_WORKERS: '1',
      ROLLUP_REFRESH_MS: '200',
      RATE_LIMIT_METRICS_PER_MIN: '0',
      METRICS_CACHE_TTL_MS: '0',
    });
    try {
      await waitUntil(
        'both processes to listen',
        () =>
          Promise.resolve(
            server.lines.filter((l) => l.includes('"msg":"listening"')).length >= 2 || null,
          ),
        { timeoutMs: 30_000 },
      );
      const pids = new Set(
        server.lines
          .filter((l) => l.includes('"msg":"listening"'))
          .map((l) => (JSON.parse(l) as { pid: number }).pid),
      );
      expect(pids.size).toBe(2);

      const events = Array.from({ length: 400 }, (_, i) => ({
        event_id: randomUUID(),
        event_name: 'cluster',
        user_id: `u${i % 37}`,
        timestamp: 1_700_000_000 + i,
      }));
      // Every event twice, in bulks of 20, in two different orders, four requests at a time.
      const bulks = [...chunk(events, 20), ...chunk([...events].reverse(), 20)];
      let inserted = 0;
      for (const group of chunk(bulks, 4)) {
        const answers = await Promise.all(
          group.map((b) => postOnNewConnection(server.url, '/events/bulk', { events: b })),
        );
        for (const a of answers) {
          expect(a.status).toBe(202);
          inserted += (JSON.parse(a.body) as { inserted: number }).inserted;
        }
      }
      expect(inserted).toBe(events.length);
      const stored = await db.query<{ event_id: string }>(
        "SELECT event_id FROM events WHERE event_name = 'cluster'",
      );
      expect(new Set(stored.map((r) => r.event_id))).toEqual(
        new Set(events.map((e) => e.event_id)),
      );
      expect(stored).toHaveLength(events.length);

      // Both processes run a refresher; the advisory lock lets one at a time absorb each row once.
      const cells = await waitUntil(
        'the rollup to absorb the stream',
        async () => {
          const rows = await db.query<{ n: string }>(
            "SELECT sum(event_count)::text AS n FROM rollup_cells WHERE grain = 1 AND event_name = 'cluster'",
          );
          return rows[0]?.n === String(events.length) ? rows : null;
        },
        { timeoutMs: 20_000 },
      );
      expect(cells[0]?.n).toBe('400');
      const answer = (await (
        await fetch(`${server.url}/metrics?event_name=cluster&from=1700000000&to=1700000399`)
      ).json()) as { totals: unknown };
      expect(answer.totals).toEqual({ count: 400, unique_users: 37 });

      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('refuses to start when the configuration needs more connections than Postgres accepts', async () => {
    const server = spawnServer(db.dsn, { INGEST_WORKERS: '64', PG_POOL_SIZE_PER_WORKER: '10' });
    await expect(server).rejects.toThrow(/opens 649 Postgres connections/);
  });
});

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
