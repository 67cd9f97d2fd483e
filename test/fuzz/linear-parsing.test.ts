// No request can stall the server through parsing: each adversarial request below goes to the real
// server with a GET /healthz written right behind it on a second connection, and both must be
// answered within 1 s of being sent. A parser quadratic in its input held the thread that serves
// every request for seconds at 60 KB and minutes at 200 KB, so the bound cannot flake either way.
// MAX_HEADER_BYTES is at its maximum here, so values just under it reach the parsers.
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import {
  destroyRawConnections,
  jsonPost,
  openRaw,
  rawGet,
  rawPost,
  rawRequest,
} from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { perUwsBuild } from '../helpers/uws-build.js';

const apiKey = `pk_${randomUUID()}`;
const allowedOrigin = 'https://app.example';
const maxHeaderBytes = 65_536;
const boundMs = 1000;

let db: TestDatabase;
let server: TestServer;
let port: number;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, {
    INGEST_WORKERS: '1',
    API_KEYS: apiKey,
    CORS_ORIGINS: allowedOrigin,
    MAX_HEADER_BYTES: String(maxHeaderBytes),
    RATE_LIMIT_METRICS_PER_MIN: '0',
  });
  port = Number(new URL(server.url).port);
});
afterAll(async () => {
  destroyRawConnections();
  await server?.stop();
  await db?.close();
});
afterEach(() => destroyRawConnections());

/** uWS 20.30 closes a connection whose request head is over about 125 KB, before pulse sees it.
 *  (A head over 4 KB that arrives in more than one read is closed too: every request here is
 *  written at once on a fresh connection, so it arrives in one.) */
const closedByUws = 200 * 1024;
/** Passes uWS, over MAX_HEADER_BYTES: refused by pulse. */
const overLimit = 100 * 1024;
/** Under MAX_HEADER_BYTES with room for the rest of the value: parsed. */
const underLimit = 60 * 1024;
/** uWS 20.57 answers 431 itself to any request head over 4 KB, so a long header or query never
 *  reaches pulse there; test/unit/linear-parsing.test.ts proves the parsers on both builds. */
const throughUws = (status: number | null) => perUwsBuild({ '20.30': status, '20.57': 431 });

/** `unit` repeated to `size` characters. */
const fill = (unit: string, size: number) => unit.repeat(Math.ceil(size / unit.length));
const keyHeader = `X-API-Key: ${apiKey}`;
const event = () => ({
  event_id: `lp-${randomUUID()}`,
  event_name: 'linear',
  user_id: 'u',
  timestamp: 1_700_000_000,
});
const eventText = () => JSON.stringify(event()).slice(1, -1);

/** Writes the request and a GET /healthz on two open connections in the same tick; both answers
 *  (null: closed unanswered) and whether each came within the bound of the writes. */
async function sendBesideHealthz(request: Buffer | string) {
  const [connection, probe] = await Promise.all([openRaw(port), openRaw(port)]);
  const started = performance.now();
  connection.write(request);
  probe.write(rawGet('/healthz'));
  const answered = async (next: Promise<{ status: number } | null>) => {
    const response = await next;
    return { status: response?.status ?? null, withinBound: performance.now() - started < boundMs };
  };
  const [answer, healthz] = await Promise.all([
    answered(connection.next()),
    answered(probe.next()),
  ]);
  return { answer, healthz };
}

interface Case {
  readonly name: string;
  readonly request: () => Buffer | string;
  /** null: uWS closes the connection unanswered. */
  readonly status: number | null;
}

function headerCases(
  header: string,
  value: (size: number) => string,
  send: (line: string) => Buffer | string,
  parsedStatus: number,
): Case[] {
  return [
    {
      name: `a ${header} of 200 KB is closed by uWS`,
      request: () => send(`${header}: ${value(closedByUws)}`),
      status: throughUws(null),
    },
    {
      name: `a ${header} of 100 KB is refused with 431`,
      request: () => send(`${header}: ${value(overLimit)}`),
      status: throughUws(431),
    },
    {
      name: `a ${header} of 60 KB is parsed`,
      request: () => send(`${header}: ${value(underLimit)}`),
      status: throughUws(parsedStatus),
    },
  ];
}

const getMetrics = (line: string) => rawGet('/metrics', [keyHeader, line]);
const postEvent = (line: string) => jsonPost('/events', JSON.stringify(event()), [line]);
const postEventWithKey = (line: string) =>
  jsonPost('/events', JSON.stringify(event()), [keyHeader, line]);
const postWithContentType = (line: string) => {
  const body = JSON.stringify(event());
  return rawPost('/events', [keyHeader, line, `Content-Length: ${body.length}`], body);
};

const headers: Case[] = [
  ...headerCases('If-None-Match', (n) => `a${fill(' ', n)}b`, getMetrics, 200),
  ...headerCases('Authorization', (n) => `Bearer${fill(' \t', n)}x`, postEvent, 401),
  ...headerCases('X-API-Key', (n) => fill('k', n), postEvent, 401),
  ...headerCases('Content-Type', (n) => fill(';', n), postWithContentType, 415),
  {
    name: 'a Content-Type of 60 KB of charset parameters is parsed',
    request: () =>
      postWithContentType(`Content-Type: application/json${fill('; charset=', underLimit)}`),
    status: throughUws(415),
  },
  ...headerCases('Origin', (n) => `${allowedOrigin}${fill('a', n)}`, postEventWithKey, 202),
];

const metricsQuery = (query: string) => rawGet(`/metrics?${query}`, [keyHeader]);
const queries: Case[] = [
  {
    name: 'a query of 200 KB is closed by uWS',
    request: () => metricsQuery(fill('&', closedByUws)),
    status: throughUws(null),
  },
  {
    name: 'a query of 100 KB is refused with 414',
    request: () => metricsQuery(fill('&', overLimit)),
    status: throughUws(414),
  },
  {
    name: '60 KB of & is parsed',
    request: () => metricsQuery(fill('&', underLimit)),
    status: throughUws(200),
  },
  {
    name: '60 KB of % is parsed',
    request: () => metricsQuery(fill('%', underLimit)),
    status: throughUws(400),
  },
  {
    name: '60 KB of from=1& is parsed',
    request: () => metricsQuery(fill('from=1&', underLimit)),
    status: throughUws(400),
  },
  {
    name: '60 KB of %2 is parsed',
    request: () => metricsQuery(fill('%2', underLimit)),
    status: throughUws(400),
  },
  {
    name: '60 KB of partial=true& on a bulk is parsed',
    request: () =>
      jsonPost(
        `/events/bulk?${fill('partial=true&', underLimit)}`,
        JSON.stringify({ events: [event()] }),
        [keyHeader],
      ),
    status: throughUws(400),
  },
];

const bodySize = 200 * 1024;
const longKey = 'k'.repeat(500);
function underLongKeys(inner: string): string {
  let value = inner;
  for (let depth = 0; depth < 30; depth++) value = `{"${longKey}":${value}}`;
  return value;
}
const single = (body: string | Buffer, extra: string[] = []) =>
  jsonPost('/events', body, [keyHeader, ...extra]);
const bodies: Case[] = [
  { name: '200 KB of [', request: () => single(fill('[', bodySize)), status: 400 },
  { name: '200 KB of {"a": nesting', request: () => single(fill('{"a":', bodySize)), status: 400 },
  {
    name: '200 KB of \\" escapes in a string',
    request: () => single(`{${eventText()},"channel":"${fill('\\"', bodySize)}"}`),
    status: 400,
  },
  {
    name: '200 KB of spaces around an event',
    request: () => single(`${fill(' ', bodySize)}{${eventText()}}`),
    status: 202,
  },
  {
    name: '200 KB of lone surrogates under 30 levels of 500-character metadata keys',
    request: () =>
      single(
        `{${eventText()},"metadata":${underLongKeys(`[${fill('"\\ud800",', bodySize)}"a"]`)}}`,
      ),
    status: 400,
  },
  {
    name: '200 KB of non-finite numbers under a 50 KB metadata key',
    request: () =>
      single(
        `{${eventText()},"metadata":{"${'k'.repeat(50_000)}":[${fill('1e400,', bodySize)}1]}}`,
      ),
    status: 400,
  },
  {
    name: 'a gzip body of 200 KB of lone surrogates in metadata',
    request: () =>
      single(gzipSync(`{${eventText()},"metadata":{"a":[${fill('"\\ud800",', bodySize)}"a"]}}`), [
        'Content-Encoding: gzip',
      ]),
    status: 400,
  },
  {
    name: 'a gzip body of 200 KB of [',
    request: () => single(gzipSync(fill('[', bodySize)), ['Content-Encoding: gzip']),
    status: 400,
  },
  {
    name: 'a corrupt gzip body of 200 KB',
    request: () =>
      single(Buffer.concat([gzipSync('{}').subarray(0, 10), Buffer.alloc(bodySize, 0x5a)]), [
        'Content-Encoding: gzip',
      ]),
    status: 400,
  },
];

describe.each([
  ['headers', headers],
  ['query strings', queries],
  ['bodies', bodies],
])('%s', (_group, cases) => {
  it.each(cases.map((c) => [c.name, c] as const))(
    '%s, and /healthz is answered meanwhile',
    async (_name, { request, status }) => {
      const bytes = request();
      expect(await sendBesideHealthz(bytes)).toEqual({
        answer: { status, withinBound: true },
        healthz: { status: 200, withinBound: true },
      });
    },
  );
});

describe('refusals', () => {
  // A limit under uWS 20.57's own 4 KB cap on the head, so pulse's refusal is what answers on
  // both builds.
  const smallLimit = 1024;
  const overSmallLimit = 2 * 1024;
  let small: TestServer;
  let smallPort: number;
  beforeAll(async () => {
    small = await startTestServer(db.dsn, {
      INGEST_WORKERS: '1',
      API_KEYS: apiKey,
      CORS_ORIGINS: allowedOrigin,
      MAX_HEADER_BYTES: String(smallLimit),
    });
    smallPort = Number(new URL(small.url).port);
  });
  afterAll(async () => {
    destroyRawConnections();
    await small?.stop();
  });

  it('names the oversized header in the 431, never its value', async () => {
    const value = `Bearer ${fill('s', overSmallLimit)}`;
    const response = await rawRequest(smallPort, rawGet('/metrics', [`Authorization: ${value}`]));
    expect([response?.status, JSON.parse(response?.body ?? 'null')]).toEqual([
      431,
      {
        type: 'urn:pulse:problem:header_too_large',
        title: 'Request header is too large',
        status: 431,
        detail: `The authorization header is longer than ${smallLimit} bytes (MAX_HEADER_BYTES).`,
        code: 'header_too_large',
      },
    ]);
  });

  it('closes the connection after refusing an oversized header on an ingest route', async () => {
    const connection = await openRaw(smallPort);
    connection.write(postEvent(`X-API-Key: ${fill('k', overSmallLimit)}`));
    const response = await connection.next();
    await connection.closed();
    expect([response?.status, connection.isClosed]).toEqual([431, true]);
  });

  it('refuses a CORS preflight with an Origin over MAX_HEADER_BYTES with 431', async () => {
    const preflight = [
      'OPTIONS /events HTTP/1.1',
      'Host: 127.0.0.1',
      `Origin: ${allowedOrigin}${fill('a', overSmallLimit)}`,
      '',
      '',
    ].join('\r\n');
    const response = await rawRequest(smallPort, preflight);
    expect([response?.status, response?.headers.vary]).toEqual([431, 'Origin']);
  });

  it('a head over 4 KB that arrives in two reads: closed by uWS 20.30 (known limitation), 431 from 20.57', async () => {
    const request = rawGet('/healthz', [`X-Padding: ${'a'.repeat(5 * 1024)}`]);
    const connection = await openRaw(port);
    connection.write(request.slice(0, 100));
    await new Promise((resolve) => setTimeout(resolve, 50));
    connection.write(request.slice(100));
    expect((await connection.next())?.status ?? null).toBe(
      perUwsBuild({ '20.30': null, '20.57': 431 }),
    );
  });

  it('answers a corrupt gzip body in its own words, not zlib’s', async () => {
    const corrupt = Buffer.concat([gzipSync('{}').subarray(0, 10), Buffer.from('not deflate')]);
    const response = await fetch(`${server.url}/events`, {
      method: 'POST',
      headers: {
        'x-api-key': apiKey,
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      },
      body: corrupt,
    });
    const body = (await response.json()) as { code: string; detail: string };
    expect([response.status, body.code, body.detail]).toEqual([
      400,
      'invalid_encoding',
      'The gzip body is corrupt.',
    ]);
  });
});
