// Security anchors against the real server: keys never logged, one 401 for
// every bad key, keys only from headers, rate limits per client, CORS off unless configured (and
// exact when on), and the built server running as an unprivileged user.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { spawnBuiltServer, type ChaosServer } from '../chaos/lib/server-process.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { spawnUnprivilegedServer } from '../helpers/unprivileged-server.js';
import { waitUntil } from '../helpers/wait-until.js';
import {
  destroyRawConnections,
  jsonPost,
  openRaw,
  rawRequest,
  type RawResponse,
} from '../helpers/raw-http.js';

const keys = [`pk_${randomUUID()}`, `pk_${randomUUID()}`];
const allowedOrigin = 'https://app.example';

let db: TestDatabase;
/** In-process, API_KEYS and CORS_ORIGINS set, a small metrics rate limit. */
let keyed: TestServer;
/** In-process, all defaults: no keys, no CORS. */
let plain: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  [keyed, plain] = await Promise.all([
    startTestServer(db.dsn, {
      API_KEYS: keys.join(','),
      CORS_ORIGINS: `${allowedOrigin},http://localhost:3000`,
      RATE_LIMIT_METRICS_PER_MIN: '2',
      INGEST_WORKERS: '1',
    }),
    startTestServer(db.dsn, { RATE_LIMIT_METRICS_PER_MIN: '2', INGEST_WORKERS: '1' }),
  ]);
});
afterAll(async () => {
  destroyRawConnections();
  await Promise.all([keyed?.stop(), plain?.stop()]);
  await db?.close();
});
afterEach(() => destroyRawConnections());

const portOf = (server: { url: string }) => Number(new URL(server.url).port);
const body = () => JSON.stringify(makeEvent());

/** Status line, headers (Date dropped: it is the only one allowed to differ) and body. */
function withoutDate(response: RawResponse | null): unknown {
  return (
    response && {
      statusLine: response.statusLine,
      headerLines: response.headerLines.filter((line) => !/^date:/i.test(line)),
      body: response.body,
    }
  );
}

describe('401', () => {
  it('is byte-identical for a missing, a malformed and an unknown key on POST /events', async () => {
    const b = body();
    const answers = await Promise.all(
      [
        [],
        ['X-API-Key: '],
        ['Authorization: Basic dXNlcjpwYXNz'],
        ['Authorization: Bearer'],
        [`X-API-Key: ${keys[0]} trailing`],
        [`X-API-Key: ${keys[0]!.toUpperCase()}`],
        // Long, but under uWS 20.57's 4 KB request head, which it answers 431 itself.
        [`Authorization: Bearer ${'k'.repeat(3000)}`],
        ['X-API-Key: pk_unknown'],
      ].map((headers) => rawRequest(portOf(keyed), jsonPost('/events', b, headers))),
    );
    expect(answers[0]?.status).toBe(401);
    for (const answer of answers) expect(withoutDate(answer)).toEqual(withoutDate(answers[0]!));
  });

  it('is byte-identical for a missing, a malformed and an unknown key on GET /metrics', async () => {
    const get = (header: string) =>
      rawRequest(
        portOf(keyed),
        `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n${header}${header && '\r\n'}\r\n`,
      );
    const answers = await Promise.all([
      get(''),
      get('Authorization: Token abc'),
      get('X-API-Key: pk_unknown'),
    ]);
    expect(answers[0]?.status).toBe(401);
    for (const answer of answers) expect(withoutDate(answer)).toEqual(withoutDate(answers[0]));
  });

  it('takes keys only from headers: ?api_key= and ?key= are 401', async () => {
    const statuses = await Promise.all(
      [`/events?api_key=${keys[0]}`, `/events?key=${keys[0]}&x-api-key=${keys[0]}`].map(
        async (path) => {
          const res = await fetch(`${keyed.url}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: body(),
          });
          await res.arrayBuffer();
          return res.status;
        },
      ),
    );
    const metrics = await fetch(`${keyed.url}/metrics?api_key=${keys[0]}`);
    await metrics.arrayBuffer();
    expect([...statuses, metrics.status]).toEqual([401, 401, 401]);
  });
});

describe('rate limits', () => {
  async function metricsStatus(url: string, headers: Record<string, string> = {}) {
    const res = await fetch(`${url}/metrics`, { headers });
    await res.arrayBuffer();
    return res.status;
  }

  it("one key's 429 never limits another key", async () => {
    const first = { 'x-api-key': keys[0]! };
    const second = { authorization: `Bearer ${keys[1]}` };
    const exhausted: number[] = [];
    for (let i = 0; i < 3; i++) exhausted.push(await metricsStatus(keyed.url, first));
    expect(exhausted).toEqual([200, 200, 429]);
    expect(await metricsStatus(keyed.url, second)).toBe(200);
  });

  it("without keys, one address's 429 never limits another address", async () => {
    // Every 127.0.0.0/8 address reaches a server bound to 127.0.0.1: two clients, two buckets.
    const getFrom = async (localAddress: string) => {
      const connection = await openRaw(portOf(plain), localAddress);
      connection.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const response = await connection.next();
      connection.destroy();
      return response?.status;
    };
    const exhausted: (number | undefined)[] = [];
    for (let i = 0; i < 3; i++) exhausted.push(await getFrom('127.0.0.2'));
    expect(exhausted).toEqual([200, 200, 429]);
    expect(await getFrom('127.0.0.3')).toBe(200);
  });
});

describe('CORS', () => {
  const accessControl = (headers: Readonly<Record<string, string>>) =>
    Object.keys(headers).filter((h) => h.startsWith('access-control-') || h === 'vary');

  it('sends no CORS headers and answers a preflight 405 when CORS_ORIGINS is unset', async () => {
    const preflight = await rawRequest(
      portOf(plain),
      `OPTIONS /events HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: ${allowedOrigin}\r\nAccess-Control-Request-Method: POST\r\n\r\n`,
    );
    const post = await rawRequest(
      portOf(plain),
      jsonPost('/events', body(), [`Origin: ${allowedOrigin}`]),
    );
    expect([preflight?.status, post?.status]).toEqual([405, 202]);
    expect([...accessControl(preflight!.headers), ...accessControl(post!.headers)]).toEqual([]);
  });

  it('answers a preflight from an allowed origin with 204 and the allowlisted methods and headers', async () => {
    for (const path of ['/events', '/events/bulk']) {
      const response = await rawRequest(
        portOf(keyed),
        `OPTIONS ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: ${allowedOrigin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, x-api-key\r\n\r\n`,
      );
      expect(response?.status).toBe(204);
      expect(response?.body).toBe('');
      expect(
        Object.fromEntries(accessControl(response!.headers).map((h) => [h, response!.headers[h]])),
      ).toEqual({
        'access-control-allow-origin': allowedOrigin,
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'content-type, authorization, x-api-key, content-encoding',
        'access-control-max-age': '600',
        vary: 'Origin',
      });
      expect(response?.headers['access-control-allow-credentials']).toBeUndefined();
    }
  });

  it('refuses a preflight from another origin with 405 and no Access-Control headers', async () => {
    const response = await rawRequest(
      portOf(keyed),
      'OPTIONS /events HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\n\r\n',
    );
    expect(response?.status).toBe(405);
    expect(accessControl(response!.headers)).toEqual(['vary']);
  });

  it('echoes an allowed origin on actual responses, 202 and 401 alike, and never *', async () => {
    const stored = await fetch(`${keyed.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: allowedOrigin, 'x-api-key': keys[0]! },
      body: body(),
    });
    const unauthorized = await fetch(`${keyed.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://localhost:3000' },
      body: body(),
    });
    await Promise.all([stored.arrayBuffer(), unauthorized.arrayBuffer()]);
    expect([
      stored.status,
      stored.headers.get('access-control-allow-origin'),
      stored.headers.get('vary'),
      unauthorized.status,
      unauthorized.headers.get('access-control-allow-origin'),
    ]).toEqual([202, allowedOrigin, 'Origin', 401, 'http://localhost:3000']);
    expect(stored.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('gives another origin no Access-Control-Allow-Origin', async () => {
    const res = await fetch(`${keyed.url}/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        origin: 'https://app.example.evil.example',
        'x-api-key': keys[0]!,
      },
      body: body(),
    });
    await res.arrayBuffer();
    expect([res.status, res.headers.get('access-control-allow-origin')]).toEqual([202, null]);
  });
});

// ---------------------------------------------------------------------------------------------
// The built server in its own process: what it logs, and who it runs as.

describe('the built server', () => {
  let spawned: ChaosServer | undefined;
  afterEach(async () => {
    if (spawned && spawned.child.exitCode === null && spawned.child.signalCode === null) {
      spawned.child.kill('SIGTERM');
      await spawned.exited;
    }
    spawned = undefined;
  });

  it('never logs an API key or the database password, on the 202, 400, 401, 413 and 503 paths', async () => {
    const password = decodeURIComponent(new URL(db.dsn).password);
    expect(password.length).toBeGreaterThan(8);
    spawned = await spawnBuiltServer(db.dsn, {
      API_KEYS: keys.join(','),
      LOG_LEVEL: 'trace',
      MAX_BODY_BYTES: '4096',
      // One event fills the queue, so a second request meets 503 queue_full deterministically.
      QUEUE_MAX_SIZE: '1',
      BULK_MAX_EVENTS: '1',
      INGEST_WORKERS: '1',
    });
    const port = spawned.port;
    const post = (payload: string, headers: string[]) =>
      rawRequest(port, jsonPost('/events', payload, headers));
    const withKey = [`X-API-Key: ${keys[0]}`];
    const statuses: (number | undefined)[] = [];
    statuses.push((await post(body(), withKey))?.status);
    statuses.push((await post(body(), [`Authorization: Bearer ${keys[1]}`]))?.status);
    statuses.push((await post(body(), [`X-API-Key: ${keys[0]}x`]))?.status);
    statuses.push((await post('{"event_name":', withKey))?.status);
    statuses.push((await post(JSON.stringify(makeEvent({ user_id: keys[1] })), withKey))?.status);
    statuses.push((await post('x'.repeat(5000), withKey))?.status);
    const metrics = await fetch(`${spawned.url}/metrics`, { headers: { 'x-api-key': keys[1]! } });
    await metrics.arrayBuffer();
    statuses.push(metrics.status);

    // 503: hold the events table so the one queued event cannot commit, then send another.
    const blocker = new pg.Client({ connectionString: db.dsn });
    await blocker.connect();
    try {
      await blocker.query('BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
      const held = post(body(), withKey);
      await waitUntil(
        'the writer to wait on the lock',
        async () =>
          (
            await db.query<{ n: number }>(
              "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE 'pulse%'",
            )
          )[0]!.n > 0,
        { timeoutMs: 20_000 },
      );
      statuses.push((await post(body(), withKey))?.status);
      await blocker.query('COMMIT');
      statuses.push((await held)?.status);
    } finally {
      await blocker.end();
    }
    expect(statuses).toEqual([202, 202, 401, 400, 202, 413, 200, 503, 202]);

    spawned.child.kill('SIGTERM');
    await spawned.exited;
    const lines = spawned.lines;
    expect(lines.length).toBeGreaterThan(3);
    // The trace level really logged the refusals: the check below read what the paths printed.
    expect(lines.some((l) => l.includes('"code":"unauthorized"'))).toBe(true);
    const leaks = lines.filter(
      (line) => keys.some((key) => line.includes(key)) || line.includes(password),
    );
    expect(leaks).toEqual([]);
  });

  it('keeps every log line one JSON object when an event carries a forged log line', async () => {
    spawned = await spawnBuiltServer(db.dsn, { LOG_LEVEL: 'trace', INGEST_WORKERS: '1' });
    const forged = '\n{"level":60,"msg":"forged"}\r\n';
    const marker = `forge-${randomUUID()}`;
    const answers = await Promise.all([
      // Stored: verbatim, never logged.
      rawRequest(
        spawned.port,
        jsonPost('/events', JSON.stringify(makeEvent({ event_name: forged, user_id: marker }))),
      ),
      // Refused: bad JSON, and a field name the detail quotes and the log line carries.
      rawRequest(spawned.port, jsonPost('/events', `{"event_name":"${forged.slice(1, 12)}`)),
      rawRequest(
        spawned.port,
        jsonPost('/events', JSON.stringify({ ...makeEvent(), [forged]: 1 })),
      ),
      rawRequest(
        spawned.port,
        jsonPost('/events', JSON.stringify(makeEvent({ metadata: { [forged]: '\u0000' } }))),
      ),
    ]);
    expect(answers.map((a) => a?.status)).toEqual([202, 400, 400, 400]);
    spawned.child.kill('SIGTERM');
    await spawned.exited;
    const parsed = spawned.lines.map((line) => {
      try {
        const value: unknown = JSON.parse(line);
        return typeof value === 'object' && value !== null && !Array.isArray(value)
          ? (value as Record<string, unknown>)
          : line;
      } catch {
        return line;
      }
    });
    expect(parsed.filter((p) => typeof p === 'string')).toEqual([]);
    const objects = parsed as Record<string, unknown>[];
    expect(objects.filter((o) => o.msg === 'forged')).toEqual([]);
    expect(objects.filter((o) => o.msg === 'request refused')).toHaveLength(3);
    const rows = await db.query<{ event_name: string }>(
      'SELECT event_name FROM events WHERE user_id = $1',
      [marker],
    );
    expect(rows).toEqual([{ event_name: forged }]);
  });

  // Never skipped: as root it runs a readable copy as 65534, as any other user the build itself;
  // where neither can work (no CAP_SETUID, node not executable by others) it fails saying why.
  it('serves normally as an unprivileged user (uid/gid 65534, nobody, when the suite runs as root)', async () => {
    const server = await spawnUnprivilegedServer(db.dsn);
    onTestFinished(() => server.removeCopy());
    spawned = server;
    const marker = randomUUID();
    const res = await fetch(`${server.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(makeEvent({ event_id: marker })),
    });
    const ready = await fetch(`${server.url}/readyz`);
    await Promise.all([res.arrayBuffer(), ready.arrayBuffer()]);
    const status = readFileSync(`/proc/${server.child.pid}/status`, 'utf8');
    const processUid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    expect([res.status, ready.status, processUid]).toEqual([202, 200, String(server.uid)]);
    expect(server.uid, 'the server must run as a uid other than root').not.toBe(0);
    expect(
      /^CapEff:\s+(\w+)/m.exec(status)?.[1],
      'the server must hold no capabilities (effective set empty)',
    ).toBe('0000000000000000');
    expect(await db.query('SELECT 1 FROM events WHERE event_id = $1', [marker])).toHaveLength(1);
  });
});
