// GET /events/export: NDJSON of the stored events (fields as ingested plus received_at), filters
// and the inclusive window, and a client that disconnects mid-stream: the cursor is closed and the
// export connection returned, so later reads still work.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { postJson, type TestEvent } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait-until.js';

const secondsPerDay = 86_400;
/** The small, hand-made events live here. */
const from = 19_500 * secondsPerDay;
const to = from + 2 * secondsPerDay - 1;
/** The big export lives here, well apart. */
const bigFrom = 19_400 * secondsPerDay;
const bigCount = 50_000;
const bigTo = bigFrom + bigCount - 1;

let db: TestDatabase;
let server: TestServer;
let keyed: TestServer;
/** PG_STATEMENT_TIMEOUT_MS at its minimum: a stalled export outlives it. */
let impatient: TestServer;

const full: TestEvent = {
  event_id: 'export-full',
  event_name: 'signup 🎉',
  user_id: 'ü-user 🦊',
  timestamp: from + 60,
  channel: 'web',
  campaign_id: 'spring-😀',
  tags: ['a', '🏷️'],
  metadata: { gone: null, nested: { list: [1, null, 'x', true], empty: {} }, emoji: '😀👍🏽' },
};
/** Only the required fields: every optional one must stay absent in the export. */
const bare: TestEvent = { event_name: 'bare', user_id: 'u-bare', timestamp: from + 120 };
const atFrom: TestEvent = {
  event_id: 'at-from',
  event_name: 'edge',
  user_id: 'u1',
  timestamp: from,
  channel: 'ios',
};
const atTo: TestEvent = {
  event_id: 'at-to',
  event_name: 'edge',
  user_id: 'u2',
  timestamp: to,
  channel: 'web',
};
const before: TestEvent = {
  event_id: 'before',
  event_name: 'edge',
  user_id: 'u3',
  timestamp: from - 1,
};
const after: TestEvent = {
  event_id: 'after',
  event_name: 'edge',
  user_id: 'u4',
  timestamp: to + 1,
};

beforeAll(async () => {
  db = await createTestDatabase();
  [server, keyed, impatient] = await Promise.all([
    startTestServer(db.dsn, {
      INGEST_WORKERS: '1',
      // One export connection: a connection the aborted export failed to return would starve
      // every later export.
      EXPORT_POOL_SIZE: '1',
      EXPORT_BATCH_ROWS: '200',
      RATE_LIMIT_METRICS_PER_MIN: '0',
      RATE_LIMIT_EXPORTS_PER_MIN: '0',
      METRICS_CACHE_TTL_MS: '0',
    }),
    startTestServer(db.dsn, { INGEST_WORKERS: '1', API_KEYS: 'export-key' }),
    startTestServer(db.dsn, {
      INGEST_WORKERS: '1',
      EXPORT_POOL_SIZE: '1',
      EXPORT_BATCH_ROWS: '200',
      RATE_LIMIT_METRICS_PER_MIN: '0',
      RATE_LIMIT_EXPORTS_PER_MIN: '0',
      PG_STATEMENT_TIMEOUT_MS: '1000',
      PG_QUERY_TIMEOUT_MS: '2000',
      EXPORT_STALL_TIMEOUT_MS: '5000',
    }),
  ]);
  const res = await postJson(`${server.url}/events/bulk`, {
    events: [full, bare, atFrom, atTo, before, after],
  });
  expect(res.body).toMatchObject({ inserted: 6 });
  // Fat rows (~1 KB each, ~50 MB in all) so the stream cannot fit in socket buffers at once.
  await db.query(
    `INSERT INTO events (idem_key, event_id, event_name, user_id, occurred_at, channel, metadata)
     SELECT md5('big' || i)::uuid, 'big-' || i, 'bulk', 'user-' || (i % 1000),
            to_timestamp($1::int8 + i), 'web', jsonb_build_object('pad', repeat('x', 1000))
     FROM generate_series(0, $2::int - 1) AS i`,
    [bigFrom, bigCount],
  );
});
afterAll(async () => {
  await Promise.all([server?.stop(), keyed?.stop(), impatient?.stop()]);
  await db?.close();
});

interface ExportAnswer {
  readonly status: number;
  readonly contentType: string | null;
  readonly lines: Record<string, unknown>[];
  readonly text: string;
}

async function exportEvents(
  query: string,
  target: TestServer = server,
  headers: Record<string, string> = {},
): Promise<ExportAnswer> {
  const res = await fetch(`${target.url}/events/export?${query}`, { headers });
  const text = await res.text();
  const isNdjson = res.headers.get('content-type') === 'application/x-ndjson';
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    text,
    lines: isNdjson
      ? text
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [],
  };
}

/** The lines without received_at (checked on its own), for comparing with what was sent. */
function withoutReceivedAt(lines: Record<string, unknown>[]): Record<string, unknown>[] {
  return lines.map(({ received_at: _, ...rest }) => rest);
}

describe('GET /events/export', () => {
  it('streams every stored event of the inclusive window as NDJSON, fields as ingested', async () => {
    const started = Date.now();
    const answer = await exportEvents(`from=${from}&to=${to}`);
    expect({ status: answer.status, contentType: answer.contentType }).toEqual({
      status: 200,
      contentType: 'application/x-ndjson',
    });
    expect(answer.text.endsWith('\n')).toBe(true);
    // occurred_at order; the events outside [from, to] are not there.
    expect(withoutReceivedAt(answer.lines)).toEqual([atFrom, full, bare, atTo]);
    for (const line of answer.lines) {
      expect(Number.isInteger(line.received_at)).toBe(true);
      // Epoch milliseconds of ingestion (same machine clock, loose bounds).
      expect(line.received_at).toBeGreaterThan(started - 10 * 60_000);
      expect(line.received_at).toBeLessThan(Date.now() + 60_000);
    }
  });

  it('keeps absent optional fields absent and nulls inside metadata as null', async () => {
    const answer = await exportEvents(`from=${from}&to=${to}&event_name=bare`);
    expect(Object.keys(answer.lines[0]!).sort()).toEqual([
      'event_name',
      'received_at',
      'timestamp',
      'user_id',
    ]);
    const rich = await exportEvents(
      `from=${from}&to=${to}&event_name=${encodeURIComponent(full.event_name)}`,
    );
    expect(withoutReceivedAt(rich.lines)).toEqual([full]);
    expect(rich.text).toContain('"gone": null');
  });

  it('filters by event_name and channel', async () => {
    const edgeWeb = await exportEvents(
      `from=${from - 10}&to=${to + 10}&event_name=edge&channel=web`,
    );
    expect(withoutReceivedAt(edgeWeb.lines)).toEqual([atTo]);
    const edge = await exportEvents(`from=${from - 10}&to=${to + 10}&event_name=edge`);
    expect(withoutReceivedAt(edge.lines)).toEqual([before, atFrom, atTo, after]);
  });

  it('exports a one-second window holding exactly the event at that second', async () => {
    const answer = await exportEvents(`from=${to}&to=${to}`);
    expect(withoutReceivedAt(answer.lines)).toEqual([atTo]);
  });

  it('answers an empty 200 stream for a window without events', async () => {
    const answer = await exportEvents('from=1000&to=2000');
    expect({ status: answer.status, text: answer.text }).toEqual({ status: 200, text: '' });
  });

  it.each([
    ['group_by=day', 'group_by'],
    ['from=x', 'from'],
    ['from=5&to=4', 'from'],
  ])('refuses %s with a 400 problem naming %s', async (query, field) => {
    const answer = await exportEvents(query);
    const res = await fetch(`${server.url}/events/export?${query}`);
    const body = (await res.json()) as { code: string; errors: Record<string, unknown> };
    expect({
      status: answer.status,
      type: answer.contentType,
      code: body.code,
      fields: Object.keys(body.errors),
    }).toEqual({
      status: 400,
      type: 'application/problem+json',
      code: 'invalid_query',
      fields: [field],
    });
  });

  it('answers 401 without a valid key when keys are set, and streams with one', async () => {
    const missing = await exportEvents(`from=${from}&to=${to}`, keyed);
    const wrong = await exportEvents(`from=${from}&to=${to}`, keyed, { 'x-api-key': 'nope' });
    const ok = await exportEvents(`from=${from}&to=${to}`, keyed, { 'x-api-key': 'export-key' });
    expect([missing.status, wrong.status, ok.status]).toEqual([401, 401, 200]);
    expect(ok.lines).toHaveLength(4);
  });

  it('streams a 50k-event export completely, one line per event, in order', async () => {
    const res = await fetch(`${server.url}/events/export?from=${bigFrom}&to=${bigTo}`);
    expect(res.status).toBe(200);
    const counted = await countLines(res);
    expect(counted).toEqual({ lines: bigCount, first: 'big-0', last: `big-${bigCount - 1}` });
  });
});

describe('GET /events/export with a client that goes away', () => {
  it('closes the cursor and returns the export connection when the client disconnects mid-stream', async () => {
    const socket = await openStalledExport(`from=${bigFrom}&to=${bigTo}`);
    try {
      // The export is mid-stream: its query is still open on the reader connection.
      await waitUntil(
        'the export query to be open',
        async () => (await readerQueries()).length > 0,
        {
          timeoutMs: 15_000,
        },
      );
    } finally {
      socket.destroy();
    }
    await waitUntil(
      'no busy pulse-export connection',
      async () => (await readerQueries()).length === 0,
      { timeoutMs: 15_000 },
    );
    // EXPORT_POOL_SIZE=1: the exports only work if the connection came back to the pool.
    const metrics = await fetch(`${server.url}/metrics?from=${from}&to=${to}`);
    expect({ status: metrics.status, body: await metrics.json() }).toMatchObject({
      status: 200,
      body: { totals: { count: 4, unique_users: 4 } },
    });
    const small = await exportEvents(`from=${from}&to=${to}`);
    expect(withoutReceivedAt(small.lines)).toEqual([atFrom, full, bare, atTo]);
    const res = await fetch(`${server.url}/events/export?from=${bigFrom}&to=${bigTo}`);
    expect((await countLines(res)).lines).toBe(bigCount);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
  });

  it('survives clients disconnecting mid-stream again and again', async () => {
    for (let i = 0; i < 3; i++) {
      const socket = await openStalledExport(`from=${bigFrom}&to=${bigTo}&channel=web`);
      socket.destroy();
      await waitUntil(
        'no busy pulse-export connection',
        async () => (await readerQueries()).length === 0,
        { timeoutMs: 15_000 },
      );
    }
    const small = await exportEvents(`from=${from}&to=${to}&channel=web`);
    expect(withoutReceivedAt(small.lines)).toEqual([full, atTo]);
  });

  it.each([
    ['cancelled', 'pg_cancel_backend'],
    ['terminated', 'pg_terminate_backend'],
  ])(
    'cuts the stream and returns the export connection when the export query is %s mid-stream',
    async (_, kill) => {
      const socket = await openStalledExport(`from=${bigFrom}&to=${bigTo}`);
      let received = '';
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      try {
        const [busy] = await waitUntil(
          'the export query to be open',
          async () => {
            const rows = await db.query<{ pid: number }>(
              `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
               AND application_name LIKE 'pulse-export-%' AND state <> 'idle'`,
            );
            return rows.length > 0 ? rows : null;
          },
          { timeoutMs: 15_000 },
        );
        let isClosed = false;
        void closed.then(() => (isClosed = true));
        socket.on('data', (chunk: Buffer) => {
          // Only the tail matters: whether the chunked body was ended cleanly.
          received = (received + chunk.toString('latin1')).slice(-64);
        });
        socket.resume();
        // A cancel reaches only a read (FETCH) that is running; Postgres ignores it between reads.
        while (!isClosed && !received.endsWith('\r\n0\r\n\r\n'))
          await db.query(`SELECT ${kill}($1)`, [busy!.pid]);
        if (!isClosed) socket.destroy(); // ended cleanly: the assertion below fails
      } finally {
        socket.destroy();
      }
      // Cut, never ended as if complete: a client must be able to tell the export is partial.
      expect(received.endsWith('\r\n0\r\n\r\n')).toBe(false);
      await waitUntil(
        'no busy pulse-export connection',
        async () => (await readerQueries()).length === 0,
        { timeoutMs: 15_000 },
      );
      // EXPORT_POOL_SIZE=1: the export only works if the failed one gave its connection back.
      const metrics = await fetch(`${server.url}/metrics?from=${from}&to=${to}`);
      expect(metrics.status).toBe(200);
      const small = await exportEvents(`from=${from}&to=${to}`);
      expect(withoutReceivedAt(small.lines)).toEqual([atFrom, full, bare, atTo]);
    },
  );
  it('closes a stalled reader after EXPORT_STALL_TIMEOUT_MS and returns its connection', async () => {
    const socket = await openStalledExport(`from=${bigFrom}&to=${bigTo}`, impatient);
    let received = '';
    try {
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      // Never read: the server must give up on this client by itself and free the connection.
      await waitUntil(
        'the export query to start',
        async () => (await readerQueries()).length > 0 || null,
        {
          timeoutMs: 15_000,
        },
      );
      await waitUntil(
        'the stalled export to release its connection',
        async () => (await readerQueries()).length === 0 || null,
        {
          timeoutMs: 20_000,
        },
      );
      socket.on('data', (chunk: Buffer) => {
        received = (received + chunk.toString('latin1')).slice(-64);
      });
      socket.resume();
      await closed;
    } finally {
      socket.destroy();
    }
    expect(received.endsWith('\r\n0\r\n\r\n')).toBe(false);
    // EXPORT_POOL_SIZE=1 on this server too: this only answers once the connection came back.
    const small = await exportEvents(`from=${from}&to=${to}`, impatient);
    expect(withoutReceivedAt(small.lines)).toEqual([atFrom, full, bare, atTo]);
  });

  // Regression: the statement timeout kept running while the cursor waited for a slow reader, so
  // any export that took longer than PG_STATEMENT_TIMEOUT_MS to read was cut short.
  it('finishes an export that a slow reader takes longer than the statement timeout to read', async () => {
    const socket = await openStalledExport(`from=${bigFrom}&to=${bigTo}`, impatient);
    try {
      // Longer than PG_STATEMENT_TIMEOUT_MS (1 s), well within EXPORT_STALL_TIMEOUT_MS (5 s).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      let tail = '';
      let newlines = 0;
      socket.on('data', (chunk: Buffer) => {
        const text = chunk.toString('latin1');
        for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) newlines++;
        tail = (tail + text).slice(-64);
      });
      const clean = '\r\n0\r\n\r\n';
      // true: the chunked body ended cleanly; false: the server cut it.
      const ended = new Promise<boolean>((resolve) => {
        socket.on('data', () => {
          if (tail.endsWith(clean)) resolve(true);
        });
        socket.once('close', () => resolve(tail.endsWith(clean)));
      });
      socket.resume();
      expect(await ended).toBe(true);
      // Every event line ends in \n; headers and chunk framing add a few more.
      expect(newlines).toBeGreaterThanOrEqual(bigCount);
    } finally {
      socket.destroy();
    }
  });
});

/** Non-idle connections of the server's export pool (the export's, or a leaked one). */
async function readerQueries(): Promise<{ pid: number; state: string; query: string }[]> {
  return db.query<{ pid: number; state: string; query: string }>(
    `SELECT pid, state, query FROM pg_stat_activity
     WHERE datname = current_database() AND application_name LIKE 'pulse-export-%' AND state <> 'idle'`,
  );
}

/** Requests an export on a raw socket and stops reading after the first bytes, so the server
 *  meets backpressure mid-stream. Resolves once the first bytes arrived. */
function openStalledExport(query: string, target: TestServer = server): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(target.url).port) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no export bytes within 15 s'));
    }, 15_000);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      socket.on('error', () => undefined); // destroyed on purpose later
      const head = chunk.toString('latin1');
      if (head.startsWith('HTTP/1.1 200')) {
        resolve(socket);
      } else {
        socket.destroy();
        reject(new Error(`export refused: ${head.slice(0, 200)}`));
      }
    });
    socket.write(`GET /events/export?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

/** Counts NDJSON lines as they stream (never holding the whole body), noting the first and last
 *  event_id. */
async function countLines(
  res: Response,
): Promise<{ lines: number; first: unknown; last: unknown }> {
  const decoder = new TextDecoder();
  let pending = '';
  let lines = 0;
  let first: unknown;
  let last: unknown;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = JSON.parse(pending.slice(0, newline)) as { event_id?: unknown };
      if (lines === 0) first = line.event_id;
      last = line.event_id;
      lines++;
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
  }
  expect(pending).toBe('');
  return { lines, first, last };
}
