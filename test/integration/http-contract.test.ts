// The HTTP contract, against the real server over real HTTP on 127.0.0.1: success
// bodies, every refusal status and its problem+json body, auth, the public routes, and the framing
// cases that need exact bytes on a raw socket. Every refusal also checks that nothing was stored.
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson, type JsonResponse } from '../helpers/events.js';
import {
  destroyRawConnections,
  jsonPost,
  openRaw,
  rawPost,
  rawRequest,
  type RawResponse,
} from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const apiKeys = ['key-one', 'key-two'];
const smallMaxBodyBytes = 2048;

let db: TestDatabase;
/** All defaults. */
let server: TestServer;
/** MAX_BODY_BYTES small enough to hit from a test. */
let limited: TestServer;
/** BODY_TIMEOUT_MS short; only the stalled-body test uses it, so no other body races the timer. */
let impatient: TestServer;
/** API_KEYS set. */
let keyed: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn);
  limited = await startTestServer(db.dsn, {
    MAX_BODY_BYTES: String(smallMaxBodyBytes),
    INGEST_WORKERS: '1',
  });
  impatient = await startTestServer(db.dsn, { BODY_TIMEOUT_MS: '300', INGEST_WORKERS: '1' });
  keyed = await startTestServer(db.dsn, { API_KEYS: apiKeys.join(','), INGEST_WORKERS: '1' });
});
afterEach(destroyRawConnections);
afterAll(async () => {
  await Promise.all([server?.stop(), limited?.stop(), impatient?.stop(), keyed?.stop()]);
  await db?.close();
});

async function countEvents(): Promise<number> {
  const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
  return rows[0]!.n;
}

/** Runs a request that must be refused and checks that the database did not change. Tests in a
 *  file run one at a time and every 202 here is durable, so the count is exact. */
async function refused<T>(send: () => Promise<T>): Promise<T> {
  const before = await countEvents();
  const result = await send();
  expect(await countEvents()).toBe(before);
  return result;
}

function port(target: TestServer): number {
  return Number(new URL(target.url).port);
}

function problemOf(res: JsonResponse): { code: unknown; status: unknown } {
  return { code: res.body.code, status: res.body.status };
}

async function post(
  url: string,
  body: string | Uint8Array,
  headers: Record<string, string>,
): Promise<JsonResponse> {
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

/** [status, problem code] of a problem response, or null when there was no response. */
function rawProblem(response: RawResponse | null): [number, unknown] | null {
  return response && [response.status, (JSON.parse(response.body) as { code: unknown }).code];
}

describe('202 bodies', () => {
  it('answers a new single event with stored, inserted 1, duplicate false', async () => {
    const res = await postJson(`${server.url}/events`, makeEvent());
    expect({ status: res.status, body: res.body }).toEqual({
      status: 202,
      body: { status: 'stored', inserted: 1, duplicate: false },
    });
  });

  it('answers a re-sent single event with inserted 0, duplicate true, and stores it once', async () => {
    const event = makeEvent();
    await postJson(`${server.url}/events`, event);
    const again = await postJson(`${server.url}/events`, event);
    expect({ status: again.status, body: again.body }).toEqual({
      status: 202,
      body: { status: 'stored', inserted: 0, duplicate: true },
    });
    const rows = await db.query('SELECT count(*)::int AS n FROM events WHERE event_id = $1', [
      event.event_id,
    ]);
    expect(rows).toEqual([{ n: 1 }]);
  });

  it('answers with content-type application/json', async () => {
    const res = await postJson(`${server.url}/events`, makeEvent());
    expect(res.headers.get('content-type')).toBe('application/json');
  });

  it('answers a new bulk with accepted_count, inserted and duplicates', async () => {
    const events = [makeEvent(), makeEvent(), makeEvent()];
    const res = await postJson(`${server.url}/events/bulk`, { events });
    expect({ status: res.status, body: res.body }).toEqual({
      status: 202,
      body: { accepted_count: 3, inserted: 3, duplicates: 0 },
    });
  });

  it('counts re-sent events of a bulk as duplicates', async () => {
    const [a, b] = [makeEvent(), makeEvent()];
    await postJson(`${server.url}/events/bulk`, { events: [a, b] });
    const res = await postJson(`${server.url}/events/bulk`, { events: [a, makeEvent(), b] });
    expect({ status: res.status, body: res.body }).toEqual({
      status: 202,
      body: { accepted_count: 3, inserted: 1, duplicates: 2 },
    });
  });

  it('accepts a bulk of exactly BULK_MAX_EVENTS events', async () => {
    const events = Array.from({ length: 100 }, () => makeEvent());
    const res = await postJson(`${server.url}/events/bulk`, { events });
    expect(res.body).toEqual({ accepted_count: 100, inserted: 100, duplicates: 0 });
  });

  it('stores the fields of an accepted event as sent', async () => {
    const event = makeEvent({
      user_id: `user-${randomUUID()}`,
      campaign_id: 'spring',
      tags: ['a', '😀'],
      metadata: { nested: { n: 9_007_199_254_740_991 } },
    });
    // An object literal cannot hold an own `__proto__` key: add it to the body text.
    const body = JSON.stringify(event).replace('"metadata":{', '"metadata":{"__proto__":"kept",');
    const res = await post(`${server.url}/events`, body, { 'content-type': 'application/json' });
    expect(res.status).toBe(202);
    const rows = await db.query(
      `SELECT event_name, channel, campaign_id, tags, metadata::text AS metadata,
              extract(epoch FROM occurred_at)::bigint::text AS ts
         FROM events WHERE event_id = $1`,
      [event.event_id],
    );
    expect(rows).toEqual([
      {
        event_name: 'purchase',
        channel: 'web',
        campaign_id: 'spring',
        tags: ['a', '😀'],
        metadata: '{"nested": {"n": 9007199254740991}, "__proto__": "kept"}',
        ts: '1700000000',
      },
    ]);
  });

  it('accepts application/json with a charset parameter', async () => {
    const res = await post(`${server.url}/events`, JSON.stringify(makeEvent()), {
      'content-type': 'Application/JSON; charset=utf-8',
    });
    expect(res.status).toBe(202);
  });
});

describe('400 refusals', () => {
  it('refuses a body that is not JSON as invalid_json, as problem+json', async () => {
    const res = await refused(() => postJson(`${server.url}/events`, '{"event_name":'));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toEqual({
      type: 'urn:pulse:problem:invalid_json',
      title: 'Request body is not valid JSON',
      status: 400,
      detail: 'The body is not valid JSON.',
      code: 'invalid_json',
    });
  });

  it('refuses invalid fields with errors keyed by field path', async () => {
    const res = await refused(() =>
      postJson(`${server.url}/events`, { event_name: '', timestamp: 0, extra: true }),
    );
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toEqual({
      type: 'urn:pulse:problem:validation_failed',
      title: 'Request body failed validation',
      status: 400,
      detail: 'Invalid fields: user_id, extra, event_name, timestamp.',
      code: 'validation_failed',
      errors: {
        user_id: ['is required'],
        extra: ['is not a known field'],
        event_name: ['must NOT have fewer than 1 characters'],
        timestamp: ['must be >= 1'],
      },
    });
  });

  it('refuses a whole bulk when one event is bad, naming it as events[3].timestamp', async () => {
    const events: unknown[] = [makeEvent(), makeEvent(), makeEvent(), makeEvent({ timestamp: -1 })];
    const res = await refused(() => postJson(`${server.url}/events/bulk`, { events }));
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual({ 'events[3].timestamp': ['must be >= 1'] });
  });

  it('refuses U+0000 in a field before it reaches the database', async () => {
    const res = await refused(() =>
      postJson(`${server.url}/events`, makeEvent({ user_id: 'a\u0000b' })),
    );
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual({
      user_id: ['must not contain U+0000 or unpaired UTF-16 surrogates'],
    });
  });

  it('refuses a lone surrogate escaped in metadata before it reaches the database', async () => {
    const body = JSON.stringify(makeEvent()).replace(
      '"channel":"web"',
      '"metadata":{"k":"\\udc00"}',
    );
    const res = await refused(() => postJson(`${server.url}/events`, body));
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual({
      'metadata.k': ['must not contain U+0000 or unpaired UTF-16 surrogates'],
    });
  });

  it('refuses a bulk of 0 events, naming events', async () => {
    const res = await refused(() => postJson(`${server.url}/events/bulk`, { events: [] }));
    expect({ status: res.status, errors: res.body.errors }).toEqual({
      status: 400,
      errors: { events: ['must contain 1 to 100 events (got 0)'] },
    });
  });

  it('refuses a bulk of 101 events, naming events', async () => {
    const events = Array.from({ length: 101 }, () => makeEvent());
    const res = await refused(() => postJson(`${server.url}/events/bulk`, { events }));
    expect({ status: res.status, errors: res.body.errors }).toEqual({
      status: 400,
      errors: { events: ['must contain 1 to 100 events (got 101)'] },
    });
  });

  it('refuses an empty body as invalid_json', async () => {
    const res = await refused(() =>
      post(`${server.url}/events`, '', { 'content-type': 'application/json' }),
    );
    expect(problemOf(res)).toEqual({ code: 'invalid_json', status: 400 });
  });

  it('refuses a single event sent to /events/bulk', async () => {
    const res = await refused(() => postJson(`${server.url}/events/bulk`, makeEvent()));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('validation_failed');
  });
});

describe('415 refusals', () => {
  it('refuses text/plain', async () => {
    const res = await refused(() =>
      post(`${server.url}/events`, JSON.stringify(makeEvent()), { 'content-type': 'text/plain' }),
    );
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toEqual({
      type: 'urn:pulse:problem:unsupported_media_type',
      title: 'Unsupported media type',
      status: 415,
      detail: 'Content-Type must be application/json (got "text/plain").',
      code: 'unsupported_media_type',
    });
  });

  it('refuses a body without Content-Type', async () => {
    // A Uint8Array body makes fetch send no Content-Type at all.
    const res = await refused(() =>
      post(`${server.url}/events`, Buffer.from(JSON.stringify(makeEvent())), {}),
    );
    expect({ status: res.status, detail: res.body.detail }).toEqual({
      status: 415,
      detail: 'Content-Type must be application/json (got "none").',
    });
  });

  it('refuses Content-Encoding br', async () => {
    const res = await refused(() =>
      post(`${server.url}/events`, JSON.stringify(makeEvent()), {
        'content-type': 'application/json',
        'content-encoding': 'br',
      }),
    );
    expect({ status: res.status, detail: res.body.detail }).toEqual({
      status: 415,
      detail: 'Content-Encoding must be gzip or identity (got "br").',
    });
  });
});

describe('413 refusals', () => {
  it('refuses from Content-Length alone, before any body byte is sent, and closes', async () => {
    const before = await countEvents();
    const connection = await openRaw(port(limited));
    connection.write(
      rawPost('/events', [
        'Content-Type: application/json',
        `Content-Length: ${smallMaxBodyBytes + 1}`,
      ]),
    );
    const response = await connection.next();
    expect(rawProblem(response)).toEqual([413, 'payload_too_large']);
    expect(response?.headers['content-type']).toBe('application/problem+json');
    await connection.closed();
    expect(await countEvents()).toBe(before);
  });

  it('accepts a body of exactly MAX_BODY_BYTES', async () => {
    const event = makeEvent();
    const text = JSON.stringify(event);
    const padded = text.slice(0, -1) + ' '.repeat(smallMaxBodyBytes - text.length) + '}';
    expect(Buffer.byteLength(padded)).toBe(smallMaxBodyBytes);
    const res = await post(`${limited.url}/events`, padded, { 'content-type': 'application/json' });
    expect(res.status).toBe(202);
  });

  it('refuses a body one byte over MAX_BODY_BYTES', async () => {
    const text = JSON.stringify(makeEvent());
    const padded = text.slice(0, -1) + ' '.repeat(smallMaxBodyBytes + 1 - text.length) + '}';
    const res = await refused(() =>
      post(`${limited.url}/events`, padded, { 'content-type': 'application/json' }),
    );
    expect(problemOf(res)).toEqual({ code: 'payload_too_large', status: 413 });
  });
});

describe('gzip bodies', () => {
  it('accepts a gzip-compressed event', async () => {
    const event = makeEvent();
    const res = await post(`${server.url}/events`, gzipSync(JSON.stringify(event)), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect({ status: res.status, body: res.body }).toEqual({
      status: 202,
      body: { status: 'stored', inserted: 1, duplicate: false },
    });
    const rows = await db.query('SELECT user_id FROM events WHERE event_id = $1', [event.event_id]);
    expect(rows).toEqual([{ user_id: 'u1' }]);
  });

  it('accepts a gzip-compressed bulk', async () => {
    const events = [makeEvent(), makeEvent()];
    const res = await post(`${server.url}/events/bulk`, gzipSync(JSON.stringify({ events })), {
      'content-type': 'application/json',
      'content-encoding': 'GZIP',
    });
    expect(res.body).toEqual({ accepted_count: 2, inserted: 2, duplicates: 0 });
  });

  it('refuses a gzip bomb (50 MB of zeros) as 413 without inflating it all', async () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(1024 * 1024); // Content-Length passes; inflating must not
    const res = await refused(() =>
      post(`${server.url}/events`, bomb, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      }),
    );
    expect(problemOf(res)).toEqual({ code: 'payload_too_large', status: 413 });
  });

  it('refuses a body that inflates past MAX_BODY_BYTES although it is small compressed', async () => {
    const events = Array.from({ length: 40 }, () => makeEvent());
    const zipped = gzipSync(JSON.stringify({ events }));
    expect(zipped.length).toBeLessThan(smallMaxBodyBytes);
    const res = await refused(() =>
      post(`${limited.url}/events/bulk`, zipped, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      }),
    );
    expect(problemOf(res)).toEqual({ code: 'payload_too_large', status: 413 });
  });

  it('refuses a corrupt gzip body as 400', async () => {
    const zipped = gzipSync(JSON.stringify(makeEvent()));
    const corrupt = Buffer.concat([zipped.subarray(0, 10), Buffer.from('not deflate data')]);
    const res = await refused(() =>
      post(`${server.url}/events`, corrupt, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      }),
    );
    expect(problemOf(res)).toEqual({ code: 'invalid_encoding', status: 400 });
  });

  it('refuses an uncompressed body labelled gzip as 400', async () => {
    const res = await refused(() =>
      post(`${server.url}/events`, JSON.stringify(makeEvent()), {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      }),
    );
    expect(problemOf(res)).toEqual({ code: 'invalid_encoding', status: 400 });
  });
});

describe('API keys', () => {
  const unauthorizedBody = {
    type: 'urn:pulse:problem:unauthorized',
    title: 'Missing or invalid API key',
    status: 401,
    detail: 'Send a valid key in X-API-Key or Authorization: Bearer.',
    code: 'unauthorized',
  };

  it.each([
    ['no key', {}],
    ['"Bearer" with nothing after it', { authorization: 'Bearer' }],
    ['a Basic credential', { authorization: 'Basic x' }],
    ['an unknown X-API-Key', { 'x-api-key': 'key-three' }],
    ['an unknown Bearer key', { authorization: 'Bearer key-three' }],
    ['a known key with a suffix', { 'x-api-key': 'key-one2' }],
  ])('refuses %s with 401 and the same body', async (_label, headers: Record<string, string>) => {
    const res = await refused(() => postJson(`${keyed.url}/events`, makeEvent(), headers));
    expect({
      status: res.status,
      type: res.headers.get('content-type'),
      body: res.body,
    }).toEqual({ status: 401, type: 'application/problem+json', body: unauthorizedBody });
  });

  it('accepts a key in X-API-Key', async () => {
    const res = await postJson(`${keyed.url}/events`, makeEvent(), { 'x-api-key': 'key-two' });
    expect(res.status).toBe(202);
  });

  it('accepts a key in Authorization: Bearer', async () => {
    const res = await postJson(
      `${keyed.url}/events/bulk`,
      { events: [makeEvent()] },
      {
        authorization: 'Bearer key-one',
      },
    );
    expect(res.status).toBe(202);
  });

  it('does not accept a key in the query string', async () => {
    const res = await refused(() =>
      postJson(`${keyed.url}/events?api_key=key-one&key=key-one`, makeEvent()),
    );
    expect(problemOf(res)).toEqual({ code: 'unauthorized', status: 401 });
  });

  it('checks the key before the media type', async () => {
    const res = await refused(() =>
      post(`${keyed.url}/events`, 'x', { 'content-type': 'text/plain' }),
    );
    expect(res.status).toBe(401);
  });

  it.each(['/healthz', '/readyz', '/openapi.yaml'])('serves %s without a key', async (path) => {
    const res = await fetch(`${keyed.url}${path}`);
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  });
});

describe('public routes', () => {
  it('answers /healthz with status ok', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect({ status: res.status, body: await res.json() }).toEqual({
      status: 200,
      body: { status: 'ok' },
    });
  });

  it('answers /readyz with every check ok', async () => {
    const res = await fetch(`${server.url}/readyz`);
    expect({ status: res.status, body: await res.json() }).toEqual({
      status: 200,
      body: {
        status: 'ready',
        checks: { database: 'ok', migrations: 'ok', writes: 'ok', queue: 'ok', serving: 'ok' },
      },
    });
  });

  it('serves /openapi.yaml as an OpenAPI 3.1.0 document with the ingest paths', async () => {
    const res = await fetch(`${server.url}/openapi.yaml`);
    expect(res.headers.get('content-type')).toBe('application/yaml');
    const doc = parseYaml(await res.text()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/events', '/events/bulk', '/healthz', '/readyz', '/openapi.yaml']),
    );
  });

  it('describes the configured bulk limit in /openapi.yaml', async () => {
    const doc = parseYaml(await (await fetch(`${server.url}/openapi.yaml`)).text()) as {
      components: { schemas: { BulkRequest: { properties: { events: { maxItems: number } } } } };
    };
    expect(doc.components.schemas.BulkRequest.properties.events.maxItems).toBe(100);
  });

  it('answers an unknown path with a 404 problem', async () => {
    const res = await fetch(`${server.url}/nope`);
    expect({
      status: res.status,
      type: res.headers.get('content-type'),
      body: await res.json(),
    }).toEqual({
      status: 404,
      type: 'application/problem+json',
      body: {
        type: 'urn:pulse:problem:not_found',
        title: 'No such route',
        status: 404,
        detail: 'No route for this method and path.',
        code: 'not_found',
      },
    });
  });

  it('answers GET /events with 405 and Allow: POST', async () => {
    const res = await fetch(`${server.url}/events`);
    const body = (await res.json()) as Record<string, unknown>;
    expect({ status: res.status, allow: res.headers.get('allow'), code: body.code }).toEqual({
      status: 405,
      allow: 'POST',
      code: 'method_not_allowed',
    });
  });

  it('answers POST /healthz with 405 and Allow: GET', async () => {
    const res = await refused(() => postJson(`${server.url}/healthz`, makeEvent()));
    expect({ status: res.status, allow: res.headers.get('allow') }).toEqual({
      status: 405,
      allow: 'GET',
    });
  });

  it('answers PUT /events/bulk with 405 and stores nothing', async () => {
    const res = await refused(() =>
      fetch(`${server.url}/events/bulk`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: [makeEvent()] }),
      }),
    );
    await res.arrayBuffer();
    expect({ status: res.status, allow: res.headers.get('allow') }).toEqual({
      status: 405,
      allow: 'POST',
    });
  });
});

// What uWS itself does before a handler runs (HTTP/1.0, async pipelining, framing it refuses in
// its parser, oversized headers) differs per build: test/integration/uws-builds.test.ts.
describe('framing on a raw socket', () => {
  const body = () => JSON.stringify(makeEvent());
  const stored = '{"status":"stored","inserted":1,"duplicate":false}';

  it('refuses two Content-Length headers as 400 bad_framing', async () => {
    const b = body();
    const headers = [
      'Content-Type: application/json',
      `Content-Length: ${b.length}`,
      `Content-Length: ${b.length}`,
    ];
    const response = await refused(() => rawRequest(port(server), rawPost('/events', headers, b)));
    expect(rawProblem(response)).toEqual([400, 'bad_framing']);
  });

  it('refuses a chunked body without Content-Length as 411', async () => {
    const b = body();
    const headers = ['Content-Type: application/json', 'Transfer-Encoding: chunked'];
    const chunked = `${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`;
    const response = await refused(() =>
      rawRequest(port(server), rawPost('/events', headers, chunked)),
    );
    expect(rawProblem(response)).toEqual([411, 'length_required']);
  });

  it('refuses a POST without Content-Length as 411', async () => {
    const response = await refused(() =>
      rawRequest(port(server), rawPost('/events', ['Content-Type: application/json'])),
    );
    expect(rawProblem(response)).toEqual([411, 'length_required']);
  });

  it('refuses a body that stalls halfway with 408 body_timeout and closes the connection', async () => {
    const b = body();
    const half = rawPost(
      '/events',
      ['Content-Type: application/json', `Content-Length: ${b.length}`],
      b.slice(0, Math.floor(b.length / 2)),
    );
    const before = await countEvents();
    const connection = await openRaw(port(impatient));
    connection.write(half);
    expect(rawProblem(await connection.next())).toEqual([408, 'body_timeout']);
    await connection.closed();
    expect(await countEvents()).toBe(before);
  });

  it('refuses invalid UTF-8 in the body as 400 invalid_encoding', async () => {
    const bytes = Buffer.from(body().replace('"u1"', '"u\u00ff"'), 'latin1'); // a lone 0xFF byte
    const response = await refused(() => rawRequest(port(server), jsonPost('/events', bytes)));
    expect(rawProblem(response)).toEqual([400, 'invalid_encoding']);
  });

  it('accepts a UTF-8 byte order mark before the JSON', async () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body())]);
    const response = await rawRequest(port(server), jsonPost('/events', bytes));
    expect([response?.status, response?.body]).toEqual([202, stored]);
  });

  it('answers a second request on the same connection after a 202', async () => {
    const connection = await openRaw(port(server));
    connection.write(jsonPost('/events', body()));
    const first = await connection.next();
    connection.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const second = await connection.next();
    expect([first?.status, first?.body, second?.status, second?.body]).toEqual([
      202,
      stored,
      200,
      '{"status":"ok"}',
    ]);
  });

  it('answers two pipelined GET requests on one connection, in order', async () => {
    const connection = await openRaw(port(server));
    connection.write(
      'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    );
    const first = await connection.next();
    const second = await connection.next();
    expect([first?.status, second?.status]).toEqual([200, 404]);
  });
});
