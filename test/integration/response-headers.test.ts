// Headers every response carries, whatever the route and status: X-Content-Type-Options: nosniff
// (src/http/exchange.ts writes every response), and uWS's own uWebSockets header, a known
// limitation of this build pinned so an upgrade that drops it shows up.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent } from '../helpers/events.js';
import { destroyRawConnections, rawRequest } from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startRelay, type TcpRelay } from '../helpers/tcp-relay.js';
import { waitUntil } from '../helpers/wait-until.js';

const apiKey = `pk_${randomUUID()}`;
const origin = 'https://app.example';

let db: TestDatabase;
let server: TestServer;
/** A second server whose database port has closed: the 503s. */
let outage: TestServer;
let relay: TcpRelay;

beforeAll(async () => {
  db = await createTestDatabase();
  relay = await startRelay(new URL(db.dsn));
  const outageDsn = new URL(db.dsn);
  outageDsn.port = String(relay.port);
  [server, outage] = await Promise.all([
    startTestServer(db.dsn, { API_KEYS: apiKey, CORS_ORIGINS: origin, INGEST_WORKERS: '1' }),
    startTestServer(outageDsn.toString(), { INGEST_WORKERS: '1' }),
  ]);
  await relay.close();
  await waitUntil(
    'the outage server to notice',
    async () => (await fetch(`${outage.url}/readyz`)).status === 503,
    { timeoutMs: 30_000, intervalMs: 100 },
  );
});
afterAll(async () => {
  destroyRawConnections();
  await Promise.all([server?.stop(), outage?.stop()]);
  await db?.close();
});

interface Answer {
  readonly status: number;
  readonly header: (name: string) => string | null | undefined;
}

const keyed = { 'x-api-key': apiKey };

async function viaFetch(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  await res.arrayBuffer(); // the whole body: the export is a stream
  return { status: res.status, header: (name) => res.headers.get(name) };
}

const post = (path: string, body: string, headers: Record<string, string> = keyed) =>
  viaFetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });

async function preflight(): Promise<Answer> {
  const res = await rawRequest(
    Number(new URL(server.url).port),
    `OPTIONS /events HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: ${origin}\r\nAccess-Control-Request-Method: POST\r\n\r\n`,
  );
  return { status: res?.status ?? 0, header: (name) => res?.headers[name] };
}

async function notModified(): Promise<Answer> {
  const first = await fetch(`${server.url}/metrics`, { headers: keyed });
  await first.arrayBuffer();
  return viaFetch(`${server.url}/metrics`, {
    headers: { ...keyed, 'if-none-match': first.headers.get('etag') ?? '' },
  });
}

const cases: [string, number, () => Promise<Answer>][] = [
  ['GET /healthz', 200, () => viaFetch(`${server.url}/healthz`)],
  ['GET /readyz', 200, () => viaFetch(`${server.url}/readyz`)],
  ['GET /openapi.yaml', 200, () => viaFetch(`${server.url}/openapi.yaml`)],
  ['POST /events', 202, () => post('/events', JSON.stringify(makeEvent()))],
  [
    'POST /events/bulk',
    202,
    () => post('/events/bulk', JSON.stringify({ events: [makeEvent(), makeEvent()] })),
  ],
  ['OPTIONS /events (CORS preflight)', 204, preflight],
  ['GET /metrics', 200, () => viaFetch(`${server.url}/metrics`, { headers: keyed })],
  ['GET /metrics (If-None-Match)', 304, notModified],
  [
    'GET /events/export (stream)',
    200,
    () => viaFetch(`${server.url}/events/export`, { headers: keyed }),
  ],
  [
    'GET /internal/metrics',
    200,
    () => viaFetch(`${server.url}/internal/metrics`, { headers: keyed }),
  ],
  ['POST /events (not JSON)', 400, () => post('/events', '{"event_name":')],
  ['POST /events (no key)', 401, () => post('/events', JSON.stringify(makeEvent()), {})],
  ['GET /nope', 404, () => viaFetch(`${server.url}/nope`)],
  ['DELETE /events', 405, () => viaFetch(`${server.url}/events`, { method: 'DELETE' })],
  ['GET /readyz (database gone)', 503, () => viaFetch(`${outage.url}/readyz`)],
  [
    'POST /events (database gone)',
    503,
    () =>
      viaFetch(`${outage.url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(makeEvent()),
      }),
  ],
];

describe('every response', () => {
  it.each(cases)('carries X-Content-Type-Options: nosniff: %s → %i', async (_, status, send) => {
    const answer = await send();
    expect({ status: answer.status, nosniff: answer.header('x-content-type-options') }).toEqual({
      status,
      nosniff: 'nosniff',
    });
  });

  it("carries uWS's own uWebSockets: 20 header, which this build cannot leave out", async () => {
    const answer = await viaFetch(`${server.url}/healthz`);
    expect(answer.header('uwebsockets')).toBe('20');
  });
});
