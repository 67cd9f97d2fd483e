// Scenario 5 of docs/RELIABILITY.md: under load, 1% of bulk requests carry exactly one poison
// event at a random index: the inputs Postgres cannot store (U+0000, lone surrogates, nesting deep
// enough to exhaust its stack, numbers JSON cannot carry) and plain schema violations. Each one must
// get a 400 whose `errors` names that index, no request may get a 5xx, and Postgres must never see
// a data-class error (SQLSTATE 22xxx or 54001): validation catches everything before a batch.
import { randomInt, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  judge,
  OutcomeLog,
  readStoredIds,
  sendBulkText,
  type RequestRecord,
} from '../helpers/load.js';
import { waitUntil } from '../helpers/wait-until.js';
import { startChaosPostgres, type ChaosPostgres } from './lib/chaos-postgres.js';
import { rssMb, summarize, writeScenarioResults } from './lib/scenario-results.js';
import { bulkBodyWithRaw, rawJsonMarker } from './lib/send-raw-bulk.js';
import { spawnBuiltServer, type ChaosServer } from './lib/server-process.js';
import { stopServer } from './lib/server-probes.js';

interface LoadEvent {
  event_id: string;
  event_name: string;
  user_id: string;
  timestamp: number;
  [field: string]: unknown;
}

/** Turns a clean event into a poisoned one; `raw` replaces the marker with JSON text. */
interface Poison {
  readonly name: string;
  readonly apply: (event: LoadEvent) => { event: unknown; raw?: string };
}

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

const poisons: readonly Poison[] = [
  { name: 'nul-in-user-id', apply: (e) => ({ event: { ...e, user_id: 'a\u0000b' } }) },
  { name: 'nul-in-metadata', apply: (e) => ({ event: { ...e, metadata: { note: 'x\u0000' } } }) },
  { name: 'lone-surrogate-in-name', apply: (e) => ({ event: { ...e, event_name: 'buy\ud800' } }) },
  {
    name: 'lone-surrogate-in-metadata-key',
    apply: (e) => ({ event: { ...e, metadata: { ['k\udc00']: 1 } } }),
  },
  {
    name: 'depth-40',
    apply: (e) => ({ event: { ...e, metadata: { a: rawJsonMarker } }, raw: nested(40) }),
  },
  {
    // Postgres: 54001 stack depth limit exceeded; JSON.stringify: RangeError.
    name: 'depth-100k',
    apply: (e) => ({ event: { ...e, metadata: { a: rawJsonMarker } }, raw: nested(100_000) }),
  },
  {
    name: '1e400-in-metadata',
    apply: (e) => ({ event: { ...e, metadata: { amount: rawJsonMarker } }, raw: '1e400' }),
  },
  {
    name: '1e400-timestamp',
    apply: (e) => ({ event: { ...e, timestamp: rawJsonMarker }, raw: '1e400' }),
  },
  {
    name: 'unsafe-integer',
    apply: (e) => ({
      event: { ...e, metadata: { id: rawJsonMarker } },
      raw: '12345678901234567890',
    }),
  },
  {
    name: 'oversize-metadata-string',
    apply: (e) => ({ event: { ...e, metadata: { blob: 'x'.repeat(70_000) } } }),
  },
  { name: 'oversize-event-name', apply: (e) => ({ event: { ...e, event_name: 'n'.repeat(200) } }) },
  { name: 'string-timestamp', apply: (e) => ({ event: { ...e, timestamp: 'yesterday' } }) },
  { name: 'number-user-id', apply: (e) => ({ event: { ...e, user_id: 12345 } }) },
  {
    // An own `__proto__` key (JSON.parse makes one); a spread or JSON.stringify cannot write it.
    name: 'proto-key',
    apply: (e) => ({
      event: rawJsonMarker,
      raw: JSON.stringify(e).replace(/}$/, ',"__proto__":{"isAdmin":true}}'),
    }),
  },
  { name: 'unknown-field', apply: (e) => ({ event: { ...e, sneaky: true } }) },
];

/** SQLSTATE classes that mean "these rows cannot be stored": data exception, program limit. */
const dataErrorLine = /ERROR:\s+(22[0-9A-Z]{3}|54001):/;

const eventsPerRequest = 20;
const poisonEvery = 100; // 1% of requests
const totalRequests = 3000;

let db: ChaosPostgres;
let server: ChaosServer;

beforeAll(async () => {
  // verbose puts the SQLSTATE in every error line: `ERROR:  22P05: unsupported Unicode escape…`.
  db = await startChaosPostgres({ extraFlags: ['-c', 'log_error_verbosity=verbose'] });
  server = await spawnBuiltServer(db.dsn, {});
});
afterAll(async () => {
  if (server) await stopServer(server);
  await db?.destroy();
});

function dataErrorsInLog(): string[] {
  return db.logLines.filter((l) => dataErrorLine.test(l));
}

/** Keys of the problem's `errors` that belong to event i (`events[i]`, `events[i].x`, `events[i][0]`). */
function errorKeysFor(record: RequestRecord, index: number): { own: string[]; others: string[] } {
  const keys = Object.keys((record.body?.errors as Record<string, unknown> | undefined) ?? {});
  const prefix = `events[${index}]`;
  const own = keys.filter(
    (k) => k === prefix || k.startsWith(`${prefix}.`) || k.startsWith(`${prefix}[`),
  );
  return { own, others: keys.filter((k) => !own.includes(k)) };
}

describe('poison events in 1% of requests under load', () => {
  it('the log grep sees a data-class error when Postgres does raise one', async () => {
    const before = dataErrorsInLog().length;
    await expect(db.query(`SELECT '"\\u0000"'::jsonb`)).rejects.toMatchObject({ code: '22P05' });
    await expect(db.query(`SELECT repeat('[', 100000)::jsonb`)).rejects.toMatchObject({
      code: '54001',
    });
    await waitUntil(
      'both errors in the Postgres log',
      () => dataErrorsInLog().length === before + 2,
      {
        timeoutMs: 5000,
      },
    );
  });

  it('answers each poisoned request 400 naming the index, with no 5xx and no data error in Postgres', async () => {
    const startedAt = Date.now();
    const dataErrorsBefore = dataErrorsInLog().length;
    const log = new OutcomeLog();
    const poisoned: { record: RequestRecord; poison: string; index: number }[] = [];
    const url = `${server.url}/events/bulk`;
    let next = 0;
    const rssStart = rssMb(server.child.pid!);
    let rssMax = rssStart;
    const client = async (clientIndex: number) => {
      while (next < totalRequests) {
        const n = next++;
        const events: LoadEvent[] = Array.from({ length: eventsPerRequest }, (_, i) => ({
          event_id: randomUUID(),
          event_name: 'poison-load',
          user_id: `client-${clientIndex}`,
          timestamp: 1_700_000_000 + i,
        }));
        let raw = '';
        let poison: Poison | undefined;
        const index = randomInt(eventsPerRequest);
        if (n % poisonEvery === poisonEvery / 2) {
          poison = poisons[Math.floor(n / poisonEvery) % poisons.length]!;
          const applied = poison.apply(events[index]!);
          (events as unknown[])[index] = applied.event;
          raw = applied.raw ?? '';
        }
        const ids = events.flatMap((e) =>
          typeof e === 'object' && typeof e.event_id === 'string' ? [e.event_id] : [],
        );
        const record = await sendBulkText(url, bulkBodyWithRaw(events, raw), ids, {
          requestTimeoutMs: 15_000,
        });
        log.records.push(record);
        if (poison) poisoned.push({ record, poison: poison.name, index });
        if (n % 200 === 0) rssMax = Math.max(rssMax, rssMb(server.child.pid!));
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => client(i)));
    const rssEnd = rssMb(server.child.pid!);

    const verdict = judge(log, await readStoredIds(db));
    const dataErrors = dataErrorsInLog().slice(dataErrorsBefore);
    const misnamed = poisoned
      .map((p) => ({
        poison: p.poison,
        index: p.index,
        status: p.record.status,
        ...errorKeysFor(p.record, p.index),
      }))
      .filter((p) => p.status !== 400 || p.own.length === 0 || p.others.length > 0);
    const poisonedRecords = new Set(poisoned.map((p) => p.record));
    const cleanNot202 = log.records.filter((r) => !poisonedRecords.has(r) && r.status !== 202);
    const serverErrors = log.records.filter((r) => r.status >= 500 || r.status === 0);
    const byPoison: Record<string, number> = {};
    for (const p of poisoned) byPoison[p.poison] = (byPoison[p.poison] ?? 0) + 1;
    writeScenarioResults(
      summarize('poison', startedAt, log, verdict, {
        rss_mb: { start: rssStart, end: rssEnd, max: Math.max(rssMax, rssEnd) },
        extra: {
          poisoned_requests: poisoned.length,
          poisoned_by_type: byPoison,
          poisoned_400_naming_index: poisoned.length - misnamed.length,
          misnamed: misnamed.slice(0, 10),
          clean_not_202: cleanNot202.length,
          server_errors: serverErrors.length,
          data_errors_in_pg_log: dataErrors.length,
          data_error_lines: dataErrors.slice(0, 5),
        },
        failures: [],
      }),
    );

    expect(poisoned.length).toBe(totalRequests / poisonEvery);
    expect(Object.keys(byPoison).sort()).toEqual(poisons.map((p) => p.name).sort());
    expect(misnamed).toEqual([]);
    expect(serverErrors.map((r) => ({ status: r.status, code: r.code, error: r.error }))).toEqual(
      [],
    );
    expect(cleanNot202.map((r) => ({ status: r.status, code: r.code }))).toEqual([]);
    expect(dataErrors).toEqual([]);
    expect(verdict).toEqual({ lostAcked: [], leakedRejected: [], phantom: [], duplicated: [] });
  });
});
