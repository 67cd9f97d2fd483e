// SIGTERM under load in queued mode: the server stops accepting, writes every event it
// acknowledged, and exits 0 within SHUTDOWN_TIMEOUT_MS (docs/RELIABILITY.md, scenario 7).
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent } from '../helpers/events.js';
import { cleanVerdict, judge, OutcomeLog, readStoredIds, startLoad } from '../helpers/load.js';
import { spawnServer, type ServerProcess } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

const shutdownTimeoutMs = 20_000;

let db: TestDatabase;
let server: ServerProcess | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  if (server?.child.exitCode === null) server.child.kill('SIGKILL');
  await db.close();
});

/** One POST on a brand-new TCP connection (fetch would reuse a keep-alive one). */
function postOnNewConnection(url: string, body: unknown): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 'no status'));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
    req.end(JSON.stringify(body));
  });
}

describe('SIGTERM in queued mode', () => {
  it('writes every acknowledged event and exits 0 when terminated mid-load', async () => {
    server = await spawnServer(db.dsn, {
      INGEST_ACK: 'queued',
      SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
    });
    const { url, lines } = server;
    const log = new OutcomeLog();
    const load = startLoad({
      url: `${url}/events/bulk`,
      log,
      clients: 8,
      eventsPerRequest: 100,
      maxRequests: 2000,
      maxDurationMs: 30_000,
      requestTimeoutMs: 15_000,
      pauseMs: 2,
    });
    await waitUntil('100 acknowledged requests', () => log.count((r) => r.status === 202) >= 100, {
      timeoutMs: 20_000,
    });
    server.child.kill('SIGTERM');

    await waitUntil(
      'the server to close its listen socket',
      () => lines.some((l) => l.includes('shutting down: closing the listen socket')),
      { timeoutMs: 10_000, intervalMs: 5 },
    );
    const lateAnswer = await postOnNewConnection(`${url}/events`, makeEvent());

    let timer: NodeJS.Timeout | undefined;
    const exitCode = await Promise.race([
      server.exited,
      new Promise<string>((resolve) => {
        // Generous slack over the deadline: a bounded wait, not a timing assertion.
        timer = setTimeout(() => resolve('still running'), shutdownTimeoutMs + 20_000);
      }),
    ]);
    clearTimeout(timer);
    load.stop();
    await load.done;

    expect(exitCode).toBe(0);
    expect(['ECONNREFUSED', 503]).toContain(lateAnswer);
    // In queued mode every 503 is a refusal before enqueueing (shutting down, queue full).
    const refusals = log.records.filter((r) => r.status === 503);
    const refusalKinds = new Set(refusals.map((r) => `${r.code} retry-after=${r.retryAfter}`));
    expect(
      [...refusalKinds].filter(
        (k) => k !== 'shutting_down retry-after=1' && k !== 'queue_full retry-after=1',
      ),
    ).toEqual([]);
    expect(log.count((r) => r.status !== 202 && r.status !== 503 && r.status !== 0)).toBe(0);
    const refusedIds = new Set(refusals.flatMap((r) => r.ids));
    expect(judge(log, await readStoredIds(db), refusedIds)).toEqual(cleanVerdict);
  });
});
