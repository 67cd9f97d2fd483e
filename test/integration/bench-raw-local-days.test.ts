// The metrics bench checks /metrics' local days against its own raw scan: that scan must put each
// event in the local calendar day the contract names, from the day's first instant.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRawScanner, type RawScanner } from '../../bench/lib/raw-metrics-scan.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const at = (iso: string) => Date.parse(iso) / 1000;
// New York springs forward on 2026-03-08; Kolkata's midnight is 18:30 UTC.
const events: [string, string][] = [
  ['2026-03-08T04:59:59Z', 'u1'], // 7 March 23:59:59 EST
  ['2026-03-08T05:00:00Z', 'u1'], // 8 March 00:00 EST (Kolkata: 8 March 10:30)
  ['2026-03-08T18:29:59Z', 'u2'], // Kolkata: 8 March 23:59:59
  ['2026-03-08T18:30:00Z', 'u2'], // Kolkata: 9 March 00:00
  ['2026-03-09T03:59:59Z', 'u3'], // 8 March 23:59:59 EDT: a 23-hour day
  ['2026-03-09T04:00:00Z', 'u3'], // 9 March 00:00 EDT
];
const window = {
  from: at('2026-03-07T00:00:00Z'),
  to: at('2026-03-10T00:00:00Z'),
  eventName: null,
};

let db: TestDatabase;
let scanner: RawScanner;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.query(
    `INSERT INTO events (project_id, idem_key, event_id, event_name, user_id, occurred_at)
     SELECT 1, md5('i' || n)::uuid, 'e' || n, 'signup', u, t
     FROM unnest($1::timestamptz[], $2::text[]) WITH ORDINALITY AS e(t, u, n)`,
    [events.map(([t]) => t), events.map(([, u]) => u)],
  );
  scanner = await openRawScanner(db.dsn);
});

afterAll(async () => {
  await scanner.close();
  await db.close();
});

describe('bench raw scan by local day', () => {
  it('counts New York days from local midnight, the spring-forward day 23 hours long', async () => {
    const { totals, days } = await scanner.perLocalDay(window, 'America/New_York');
    expect({ totals, days }).toEqual({
      totals: { count: 6, uniqueUsers: 3 },
      days: [
        { bucketStart: at('2026-03-07T05:00:00Z'), count: 1, uniqueUsers: 1 },
        { bucketStart: at('2026-03-08T05:00:00Z'), count: 4, uniqueUsers: 3 },
        { bucketStart: at('2026-03-09T04:00:00Z'), count: 1, uniqueUsers: 1 },
      ],
    });
  });

  it('counts Kolkata days from the midnight at half past a UTC hour', async () => {
    const { days } = await scanner.perLocalDay(window, 'Asia/Kolkata');
    expect(days).toEqual([
      { bucketStart: at('2026-03-07T18:30:00Z'), count: 3, uniqueUsers: 2 },
      { bucketStart: at('2026-03-08T18:30:00Z'), count: 3, uniqueUsers: 2 },
    ]);
  });
});
