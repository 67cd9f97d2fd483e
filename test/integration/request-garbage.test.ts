// A request's objects must die young. Two things once kept them alive through every minor GC until
// the next full one, a fifth of the uWS thread's allocation each time (docs/benchmarks.md): a Set of
// open requests, whose replaced hash tables, once promoted, still pointed at every request they
// had held; and V8's allocation-site pretenuring, which a start-up burst could switch on for a
// per-request site for the life of the process. The built server is driven with single durable
// events while V8 reports each GC and each pretenuring decision.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { launchServer, type ServerProcess } from '../helpers/server-process.js';

const requests = 20_000;
const connections = 50;
/** Of what the uWS thread allocates while serving, what a scavenge copies or promotes: ~2% today
 *  (50 requests in flight against a 16 MB young generation), 17–22% with the Set. */
const maxSurvivedShare = 0.08;

let db: TestDatabase;
let server: ServerProcess;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await launchServer({
    entry: 'built',
    dsn: db.dsn,
    env: { INGEST_ACK: 'durable' },
    nodeArgs: ['--trace-gc-nvp', '--trace-pretenuring', '--trace-pretenuring-statistics'],
    startTimeoutMs: 60_000,
  });
});
afterAll(async () => {
  await server.stop();
  await db.close();
});

interface IsolateGc {
  allocated: number;
  survived: number;
}

/** Bytes allocated and survived per isolate, from --trace-gc-nvp lines. */
function gcByIsolate(lines: readonly string[]): Map<string, IsolateGc> {
  const isolates = new Map<string, IsolateGc>();
  for (const line of lines) {
    const isolate = /^\[\d+:(0x[0-9a-f]+)\]\s+\d+ ms: pause=/.exec(line)?.[1];
    if (isolate === undefined) continue;
    const field = (name: string) => Number(new RegExp(` ${name}=(\\d+)`).exec(line)?.[1] ?? 0);
    const gc = isolates.get(isolate) ?? { allocated: 0, survived: 0 };
    gc.allocated += field('allocated');
    gc.survived += field('new_space_survived');
    isolates.set(isolate, gc);
  }
  return isolates;
}

describe('garbage of served requests', () => {
  it('dies young under single durable events, and no allocation site is pretenured', async () => {
    const fromLine = server.lines.length; // after start-up: only serving counts
    let sent = 0;
    const statuses = new Map<number, number>();
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (sent < requests) {
          sent++;
          const res = await fetch(`${server.url}/events`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              event_id: randomUUID(),
              event_name: 'purchase',
              user_id: `u${sent % 1000}`,
              timestamp: Math.floor(Date.now() / 1000) - 60,
              channel: 'web',
            }),
          });
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        }
      }),
    );
    expect(Object.fromEntries(statuses)).toEqual({ 202: requests });

    const serving = server.lines.slice(fromLine);
    // The uWS thread allocates the most: every request's head, body and answer.
    const [uwsThread] = [...gcByIsolate(serving).values()].sort(
      (a, b) => b.allocated - a.allocated,
    );
    expect(uwsThread, 'no GC was traced while serving').toBeDefined();
    // Enough allocation for many scavenges, so the share is not one GC's luck.
    expect(uwsThread!.allocated).toBeGreaterThan(64 * 2 ** 20);
    expect(uwsThread!.survived / uwsThread!.allocated).toBeLessThan(maxSurvivedShare);

    // With pretenuring on, V8 logs its decisions ("undecided => tenure") for every thread.
    expect(serving.filter((line) => line.includes('pretenuring: AllocationSite'))).toEqual([]);
  });
});
