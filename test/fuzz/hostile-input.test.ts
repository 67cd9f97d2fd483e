// The hostile-input corpus: raw bytes over node:net to the real server. Each
// case asserts the exact status (null = the connection was closed unanswered), that the server
// still answers /healthz afterwards, and, for anything but 202, that no row carries the case's
// marker. Every body puts a per-case marker at the start of event_id and user_id, so a row that
// slipped through is found whichever field the case mangles.
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Piscina } from 'piscina';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type {
  InsertBatchTask,
  WriterThreadOptions,
} from '../../src/workers/insert-batch-messages.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { perUwsBuild } from '../helpers/uws-build.js';
import {
  destroyRawConnections,
  jsonPost,
  openRaw,
  rawGet,
  rawPost,
  rawRequest,
  type RawConnection,
  type RawResponse,
} from '../helpers/raw-http.js';
import type { PollutionReport } from './writer-thread-probe.js';

let db: TestDatabase;
let server: TestServer;
let port: number;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, { INGEST_WORKERS: '1' });
  port = Number(new URL(server.url).port);
});
afterAll(async () => {
  destroyRawConnections();
  await server?.stop();
  await db?.close();
});
afterEach(() => destroyRawConnections());

// ---------------------------------------------------------------------------------------------
// Building requests

type Json = Record<string, unknown>;
const timestamp = 1_700_000_000;

function newMarker(): string {
  return `fz-${randomUUID()}`;
}

function event(marker: string, overrides: Json = {}): Json {
  return { event_id: marker, event_name: 'fuzz', user_id: marker, timestamp, ...overrides };
}

const single = (body: string | Buffer, extraHeaders: string[] = []) =>
  jsonPost('/events', body, extraHeaders);
const bulk = (body: string | Buffer, extraHeaders: string[] = []) =>
  jsonPost('/events/bulk', body, extraHeaders);
const one = (marker: string, overrides: Json = {}) =>
  single(JSON.stringify(event(marker, overrides)));
/** The event's JSON with `"key":value` spliced in as raw text, for what JSON.stringify cannot write. */
function spliced(marker: string, rawMember: string, overrides: Json = {}): string {
  return JSON.stringify(event(marker, overrides)).slice(0, -1) + `,${rawMember}}`;
}
/** Depth nested arrays, e.g. 3 → [[[]]]. */
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
/** A metadata object nested `depth` levels deep (1 = {"k":1}). */
function nestedObject(depth: number): Json {
  let value: Json = { k: 1 };
  for (let i = 1; i < depth; i++) value = { k: value };
  return value;
}

// ---------------------------------------------------------------------------------------------
// Checking

async function rowsFor(marker: string): Promise<Json[]> {
  return db.query(
    `SELECT event_id, event_name, user_id, channel, campaign_id, tags, metadata,
            metadata::text AS metadata_text, convert_to(event_name, 'UTF8') AS event_name_bytes,
            convert_to(user_id, 'UTF8') AS user_id_bytes
       FROM events WHERE event_id LIKE $1 OR user_id LIKE $1`,
    [`${marker}%`],
  );
}

async function expectAlive(): Promise<void> {
  const response = await rawRequest(port, rawGet('/healthz'));
  expect([response?.status, response?.body]).toEqual([200, '{"status":"ok"}']);
}

function problemCode(response: RawResponse | null): unknown {
  if (!response || !response.headers['content-type']?.includes('problem+json')) return undefined;
  return (JSON.parse(response.body) as { code?: unknown }).code;
}

/** pulse names an over-long header it reads; uWS 20.57 refuses any head over 4 KB first. */
const headerTooLarge = perUwsBuild({ '20.30': 'header_too_large', '20.57': undefined });

interface FuzzCase {
  readonly name: string;
  readonly request: (marker: string) => Buffer | string;
  /** null: the connection is closed without an answer. */
  readonly status: number | null;
  readonly code?: string;
  /** For 202: what must be stored, checked against the rows carrying the marker. */
  readonly stored?: (rows: Json[], marker: string) => void;
}

/** Exactly one row, equal in the listed columns. */
const storedAs =
  (expected: Json) =>
  (rows: Json[]): void => {
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(Object.fromEntries(Object.keys(expected).map((k) => [k, row[k]]))).toEqual(expected);
  };
const oneRow = (rows: Json[]) => expect(rows).toHaveLength(1);

const refusedAs = (status: number, code: string) => ({ status, code });
const invalidJson = refusedAs(400, 'invalid_json');
const invalidField = refusedAs(400, 'validation_failed');
const invalidEncoding = refusedAs(400, 'invalid_encoding');

const longString = (marker: string, length: number) => marker + 'x'.repeat(length - marker.length);
const utf8 = (text: string) => Buffer.from(text, 'utf8');
const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? utf8(p) : Buffer.from(p))));

// ---------------------------------------------------------------------------------------------
// The corpus

const syntaxCases: FuzzCase[] = [
  { name: 'empty bulk body', request: () => bulk(''), ...invalidJson },
  {
    name: 'truncated object',
    request: (m) => single(JSON.stringify(event(m)).slice(0, -6)),
    ...invalidJson,
  },
  {
    name: 'trailing comma in an object',
    request: (m) => single(JSON.stringify(event(m)).slice(0, -1) + ',}'),
    ...invalidJson,
  },
  {
    name: 'trailing comma in the events array',
    request: (m) => bulk(`{"events":[${JSON.stringify(event(m))},]}`),
    ...invalidJson,
  },
  {
    name: 'single-quoted strings',
    request: (m) => single(JSON.stringify(event(m)).replaceAll('"', "'")),
    ...invalidJson,
  },
  {
    name: 'NaN literal',
    request: (m) => single(spliced(m, '"metadata":{"n":NaN}')),
    ...invalidJson,
  },
  {
    name: 'Infinity literal',
    request: (m) => single(spliced(m, '"metadata":{"n":Infinity}')),
    ...invalidJson,
  },
  {
    name: 'block comment',
    request: (m) => single(`/* hi */${JSON.stringify(event(m))}`),
    ...invalidJson,
  },
  {
    name: 'line comment',
    request: (m) => single(`${JSON.stringify(event(m))}\n// bye`),
    ...invalidJson,
  },
  {
    name: 'two documents',
    request: (m) => single(JSON.stringify(event(m)) + JSON.stringify(event(`${m}-2`))),
    ...invalidJson,
  },
  {
    name: 'two bulk documents separated by a newline (NDJSON)',
    request: (m) =>
      bulk(`{"events":[${JSON.stringify(event(m))}]}\n{"events":[${JSON.stringify(event(m))}]}`),
    ...invalidJson,
  },
  { name: 'top-level string', request: () => single('"x"'), ...invalidField },
  { name: 'top-level null', request: () => single('null'), ...invalidField },
  { name: 'top-level number', request: () => single('123'), ...invalidField },
  { name: 'top-level empty array', request: () => single('[]'), ...invalidField },
  {
    name: 'an array of one event sent to /events',
    request: (m) => single(`[${JSON.stringify(event(m))}]`),
    ...invalidField,
  },
  {
    name: 'raw U+0001 inside a string',
    request: (m) =>
      single(JSON.stringify(event(m, { event_name: 'a_b' })).replace('a_b', 'a\u0001b')),
    ...invalidJson,
  },
  {
    name: 'raw newline inside a string',
    request: (m) => single(JSON.stringify(event(m, { event_name: 'a_b' })).replace('a_b', 'a\nb')),
    ...invalidJson,
  },
  {
    name: 'events as an object',
    request: (m) => bulk(`{"events":${JSON.stringify(event(m))}}`),
    ...invalidField,
  },
  { name: 'events as a string', request: () => bulk('{"events":"[]"}'), ...invalidField },
  {
    name: 'a leading UTF-8 BOM is stripped (policy)',
    request: (m) => single(bytes([0xef, 0xbb, 0xbf], JSON.stringify(event(m)))),
    status: 202,
    stored: oneRow,
  },
  {
    name: 'two leading BOMs: only one is stripped',
    request: (m) => single(bytes([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf], JSON.stringify(event(m)))),
    ...invalidJson,
  },
  {
    name: 'duplicate keys: the last event_id wins (policy)',
    request: (m) =>
      single(`{"event_id":"${m}-first",` + JSON.stringify(event(`${m}-last`)).slice(1)),
    status: 202,
    stored: (rows, m) => {
      expect(rows.map((r) => r.event_id)).toEqual([`${m}-last`]);
    },
  },
  {
    name: 'duplicate keys inside metadata: the last wins (policy)',
    request: (m) => single(spliced(m, '"metadata":{"k":1,"k":2}')),
    status: 202,
    stored: storedAs({ metadata: { k: 2 } }),
  },
];

const sizeCases: FuzzCase[] = [
  { name: 'event_id empty', request: (m) => one(m, { event_id: '' }), ...invalidField },
  {
    name: 'event_id of 129 characters',
    request: (m) => one(m, { event_id: longString(m, 129) }),
    ...invalidField,
  },
  {
    name: 'event_id of 128 characters',
    request: (m) => one(m, { event_id: longString(m, 128) }),
    status: 202,
    stored: (rows, m) => storedAs({ event_id: longString(m, 128) })(rows),
  },
  { name: 'event_name empty', request: (m) => one(m, { event_name: '' }), ...invalidField },
  {
    name: 'event_name of 129 characters',
    request: (m) => one(m, { event_name: 'n'.repeat(129) }),
    ...invalidField,
  },
  {
    name: 'user_id of 129 characters',
    request: (m) => one(m, { user_id: longString(m, 129) }),
    ...invalidField,
  },
  { name: 'user_id as a number', request: (m) => one(m, { user_id: 42 }), ...invalidField },
  {
    name: 'missing event_name',
    request: (m) => one(m, { event_name: undefined }),
    ...invalidField,
  },
  {
    name: 'timestamp as a numeric string',
    request: (m) => one(m, { timestamp: String(timestamp) }),
    ...invalidField,
  },
  { name: 'timestamp 1.5', request: (m) => one(m, { timestamp: 1.5 }), ...invalidField },
  { name: 'timestamp 0', request: (m) => one(m, { timestamp: 0 }), ...invalidField },
  { name: 'timestamp -1', request: (m) => one(m, { timestamp: -1 }), ...invalidField },
  {
    name: 'timestamp a day in the future',
    request: (m) => one(m, { timestamp: Math.floor(Date.now() / 1000) + 86_400 }),
    ...invalidField,
  },
  {
    name: 'timestamp after year 9999',
    request: (m) => one(m, { timestamp: 253_402_300_800 }),
    ...invalidField,
  },
  { name: 'channel of 65', request: (m) => one(m, { channel: 'c'.repeat(65) }), ...invalidField },
  {
    name: 'channel of 64',
    request: (m) => one(m, { channel: 'c'.repeat(64) }),
    status: 202,
    stored: storedAs({ channel: 'c'.repeat(64) }),
  },
  {
    name: 'campaign_id of 65',
    request: (m) => one(m, { campaign_id: 'c'.repeat(65) }),
    ...invalidField,
  },
  {
    name: '51 tags',
    request: (m) => one(m, { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }),
    ...invalidField,
  },
  { name: 'an empty tag', request: (m) => one(m, { tags: [''] }), ...invalidField },
  { name: 'a tag of 65', request: (m) => one(m, { tags: ['t'.repeat(65)] }), ...invalidField },
  { name: 'tags as a string', request: (m) => one(m, { tags: 'a,b' }), ...invalidField },
  { name: 'metadata as an array', request: (m) => one(m, { metadata: [1] }), ...invalidField },
  { name: 'metadata as a string', request: (m) => one(m, { metadata: '{}' }), ...invalidField },
  { name: 'metadata null', request: (m) => one(m, { metadata: null }), ...invalidField },
  {
    name: 'metadata with 1001 keys',
    request: (m) =>
      one(m, {
        metadata: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i])),
      }),
    ...invalidField,
  },
  {
    name: 'a metadata key of 257 characters',
    request: (m) => one(m, { metadata: { ['k'.repeat(257)]: 1 } }),
    ...invalidField,
  },
  {
    name: 'a metadata string of 65537 characters',
    request: (m) => one(m, { metadata: { s: 's'.repeat(65_537) } }),
    ...invalidField,
  },
  {
    name: 'a metadata array of 10001 items',
    request: (m) => one(m, { metadata: { a: new Array<number>(10_001).fill(1) } }),
    ...invalidField,
  },
  {
    name: 'metadata nested 33 deep',
    request: (m) => one(m, { metadata: nestedObject(33) }),
    ...invalidField,
  },
  {
    name: 'metadata nested 32 deep (the default limit)',
    request: (m) => one(m, { metadata: nestedObject(32) }),
    status: 202,
    stored: storedAs({ metadata: nestedObject(32) }),
  },
  {
    name: 'metadata nested 100000 deep in under 1 MB',
    request: (m) => single(spliced(m, `"metadata":{"a":${nested(100_000)}}`)),
    ...invalidField,
  },
  {
    name: 'event_name nested 100000 deep',
    request: (m) =>
      single(spliced(m, `"event_name":${nested(100_000)}`, { event_name: undefined })),
    ...invalidField,
  },
  {
    name: 'events nested 100000 deep',
    request: () => bulk(`{"events":${nested(100_000)}}`),
    ...invalidField,
  },
  {
    name: 'tags nested 100000 deep',
    request: (m) => single(spliced(m, `"tags":${nested(100_000)}`)),
    ...invalidField,
  },
  {
    name: '200000 zeros in a metadata array (under 1 MB)',
    request: (m) => single(spliced(m, `"metadata":{"a":[${'0,'.repeat(199_999)}0]}`)),
    ...invalidField,
  },
  {
    name: '101 events in a bulk (BULK_MAX_EVENTS is 100)',
    request: (m) =>
      bulk(JSON.stringify({ events: Array.from({ length: 101 }, (_, i) => event(`${m}-${i}`)) })),
    ...invalidField,
  },
  {
    name: '300000 numbers as the events array (under 1 MB)',
    request: () => bulk(`{"events":[${'0,'.repeat(299_999)}0]}`),
    ...invalidField,
  },
  { name: 'an unknown field', request: (m) => one(m, { admin: true }), ...invalidField },
];

const nul = '\u0000';
const encodingCases: FuzzCase[] = [
  ...(['event_id', 'event_name', 'user_id', 'channel', 'campaign_id'] as const).map(
    (field): FuzzCase => ({
      name: `U+0000 in ${field}`,
      request: (m) =>
        one(m, { [field]: `${field === 'user_id' || field === 'event_id' ? m : 'x'}${nul}` }),
      ...invalidField,
    }),
  ),
  { name: 'U+0000 in a tag', request: (m) => one(m, { tags: [`a${nul}`] }), ...invalidField },
  {
    name: 'U+0000 in a nested metadata value',
    request: (m) => one(m, { metadata: { a: [{ b: `x${nul}` }] } }),
    ...invalidField,
  },
  {
    name: 'U+0000 in a metadata key',
    request: (m) => one(m, { metadata: { [`k${nul}`]: 1 } }),
    ...invalidField,
  },
  {
    name: 'U+0000 in a nested metadata key',
    request: (m) => one(m, { metadata: { a: { [`k${nul}`]: 1 } } }),
    ...invalidField,
  },
  {
    name: 'a lone high surrogate in event_name',
    request: (m) => one(m, { event_name: 'a\ud800' }),
    ...invalidField,
  },
  {
    name: 'a lone low surrogate in a metadata value',
    request: (m) => one(m, { metadata: { s: '\udc00b' } }),
    ...invalidField,
  },
  {
    name: 'a lone surrogate in a metadata key',
    request: (m) => one(m, { metadata: { ['\ud800']: 1 } }),
    ...invalidField,
  },
  {
    name: 'a reversed surrogate pair in user_id',
    request: (m) => one(m, { user_id: `${m}\ude00\ud83d` }),
    ...invalidField,
  },
  {
    name: 'an escaped surrogate pair (emoji) round-trips byte-exact',
    // JSON.stringify writes the emoji as raw UTF-8; the escaped form is the case here.
    request: (m) =>
      single(
        JSON.stringify(event(m, { event_name: 'E', metadata: { e: 'E' } })).replaceAll(
          '"E"',
          '"\\ud83d\\ude00"',
        ),
      ),
    status: 202,
    stored: (rows) => {
      storedAs({ event_name: '😀', metadata: { e: '😀' } })(rows);
      expect((rows[0]!.event_name_bytes as Buffer).toString('hex')).toBe('f09f9880');
    },
  },
  {
    name: 'raw 4-byte UTF-8 in user_id, tags and a metadata key round-trips byte-exact',
    request: (m) =>
      single(
        utf8(
          JSON.stringify(event(m, { user_id: `${m}🦄`, tags: ['🦄'], metadata: { '🦄': '𝄞' } })),
        ),
      ),
    status: 202,
    stored: (rows, m) => {
      storedAs({ user_id: `${m}🦄`, tags: ['🦄'], metadata: { '🦄': '𝄞' } })(rows);
      expect(rows[0]!.user_id_bytes).toEqual(utf8(`${m}🦄`));
      expect(rows[0]!.metadata_text).toBe('{"🦄": "𝄞"}');
    },
  },
  {
    name: 'U+2028, U+2029 and escaped control characters are stored as sent',
    request: (m) =>
      one(m, {
        event_name: '\u2028\u2029',
        metadata: { c: Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('') },
      }),
    status: 202,
    stored: storedAs({
      event_name: '\u2028\u2029',
      metadata: { c: Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('') },
    }),
  },
  {
    name: 'invalid UTF-8 (0xFF 0xFE) in event_name',
    request: (m) => single(bytes(spliced(m, '"channel":"'), [0xff, 0xfe], '"}')),
    ...invalidEncoding,
  },
  {
    name: 'overlong UTF-8 (0xC0 0xAF for "/")',
    request: (m) => single(bytes(spliced(m, '"channel":"'), [0xc0, 0xaf], '"}')),
    ...invalidEncoding,
  },
  {
    name: 'overlong 3-byte UTF-8 (0xE0 0x80 0xAF)',
    request: (m) => single(bytes(spliced(m, '"channel":"'), [0xe0, 0x80, 0xaf], '"}')),
    ...invalidEncoding,
  },
  {
    name: 'a UTF-8 encoded surrogate (CESU, 0xED 0xA0 0x80)',
    request: (m) => single(bytes(spliced(m, '"channel":"'), [0xed, 0xa0, 0x80], '"}')),
    ...invalidEncoding,
  },
  {
    name: 'a truncated multi-byte sequence (0xE2 0x82)',
    request: (m) => single(bytes(spliced(m, '"channel":"'), [0xe2, 0x82], '"}')),
    ...invalidEncoding,
  },
  {
    name: 'a 5-byte lead (0xF8) and a code point above U+10FFFF (0xF4 0x90 0x80 0x80)',
    request: (m) =>
      single(
        bytes(
          spliced(m, '"channel":"'),
          [0xf8, 0x88, 0x80, 0x80, 0x80, 0xf4, 0x90, 0x80, 0x80],
          '"}',
        ),
      ),
    ...invalidEncoding,
  },
  {
    name: 'a Latin-1 body (é as 0xE9)',
    request: (m) => single(Buffer.from(spliced(m, '"channel":"café"'), 'latin1')),
    ...invalidEncoding,
  },
];

const numberCases: FuzzCase[] = [
  {
    name: '1e400 in metadata',
    request: (m) => single(spliced(m, '"metadata":{"n":1e400}')),
    ...invalidField,
  },
  {
    name: '-1e400 in metadata',
    request: (m) => single(spliced(m, '"metadata":{"n":-1e400}')),
    ...invalidField,
  },
  {
    name: '12345678901234567890 in metadata (beyond 2^53)',
    request: (m) => single(spliced(m, '"metadata":{"n":12345678901234567890}')),
    ...invalidField,
  },
  {
    name: '2^53 + 1 in a nested metadata array',
    request: (m) => single(spliced(m, '"metadata":{"a":[1,{"n":9007199254740993}]}')),
    ...invalidField,
  },
  {
    name: '-2^53 in metadata',
    request: (m) => single(spliced(m, '"metadata":{"n":-9007199254740992}')),
    ...invalidField,
  },
  {
    name: '1e20 in metadata (an integer beyond 2^53 in exponent form)',
    request: (m) => single(spliced(m, '"metadata":{"n":1e20}')),
    ...invalidField,
  },
  {
    // Large doubles are integers too; they would print back as a different integer.
    name: '1.5e300 in metadata (an integer beyond 2^53)',
    request: (m) => single(spliced(m, '"metadata":{"n":1.5e300}')),
    ...invalidField,
  },
  {
    name: '2^53 - 1 in metadata is stored exactly',
    request: (m) => single(spliced(m, '"metadata":{"n":9007199254740991}')),
    status: 202,
    stored: (rows) => {
      oneRow(rows);
      expect(rows[0]!.metadata_text).toBe('{"n": 9007199254740991}');
    },
  },
  {
    name: 'timestamp 1e400',
    request: (m) => single(spliced(m, '"timestamp":1e400', { timestamp: undefined })),
    ...invalidField,
  },
  {
    name: 'timestamp 12345678901234567890',
    request: (m) =>
      single(spliced(m, '"timestamp":12345678901234567890', { timestamp: undefined })),
    ...invalidField,
  },
  {
    name: '-0 and 1e-400 in metadata are stored as 0, fractions as sent',
    request: (m) => single(spliced(m, '"metadata":{"a":-0,"b":1e-400,"c":3.14159}')),
    status: 202,
    stored: (rows) => {
      oneRow(rows);
      expect(rows[0]!.metadata_text).toBe('{"a": 0, "b": 0, "c": 3.14159}');
    },
  },
];

const pollutionCases: FuzzCase[] = [
  {
    name: '__proto__ and constructor.prototype in metadata are stored as data',
    request: (m) =>
      single(
        spliced(
          m,
          '"metadata":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"a":[{"__proto__":{"polluted":1}}]}',
        ),
      ),
    status: 202,
    stored: storedAs({
      metadata_text:
        '{"a": [{"__proto__": {"polluted": 1}}], "__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 1}}}',
    }),
  },
  {
    name: '__proto__ as a top-level event field',
    request: (m) => single(spliced(m, '"__proto__":{"polluted":1}')),
    ...invalidField,
  },
  {
    name: '__proto__ beside events in a bulk',
    request: (m) => bulk(`{"events":[${JSON.stringify(event(m))}],"__proto__":{"polluted":1}}`),
    ...invalidField,
  },
  {
    name: 'constructor as a top-level field of a bulk event',
    request: (m) =>
      bulk(`{"events":[${spliced(m, '"constructor":{"prototype":{"polluted":1}}')}]}`),
    ...invalidField,
  },
];

const forgedLogLine = 'x\n{"level":60,"msg":"forged"}\r\n';
const injectionCases: FuzzCase[] = [
  {
    name: 'an SQL-looking event_name is stored verbatim',
    request: (m) => one(m, { event_name: "'); DROP TABLE events;--" }),
    status: 202,
    stored: storedAs({ event_name: "'); DROP TABLE events;--" }),
  },
  {
    name: 'SQL-looking metadata keys and values are stored verbatim',
    request: (m) => one(m, { metadata: { "x'; DELETE FROM events; --": "1' OR '1'='1" } }),
    status: 202,
    stored: storedAs({ metadata: { "x'; DELETE FROM events; --": "1' OR '1'='1" } }),
  },
  {
    name: 'a log-forging event_name is stored verbatim',
    request: (m) => one(m, { event_name: forgedLogLine }),
    status: 202,
    stored: storedAs({ event_name: forgedLogLine }),
  },
  {
    name: 'format strings and template syntax are stored verbatim',
    request: (m) => one(m, { event_name: '%s%n%x ${jndi:ldap://x} {{7*7}}', channel: '\\x00' }),
    status: 202,
    stored: storedAs({ event_name: '%s%n%x ${jndi:ldap://x} {{7*7}}', channel: '\\x00' }),
  },
];

function contentTypeCase(
  name: string,
  contentType: string,
  status: number,
  code?: string,
): FuzzCase {
  return {
    name,
    request: (m) => {
      const body = JSON.stringify(event(m));
      return rawPost(
        '/events',
        [`Content-Type: ${contentType}`, `Content-Length: ${body.length}`],
        body,
      );
    },
    status,
    ...(code ? { code } : { stored: oneRow }),
  };
}

const gzipBomb = (m: string) =>
  gzipSync(
    Buffer.concat([
      utf8(`{"events":[${JSON.stringify(event(m))}]}`),
      Buffer.alloc(3 * 1024 * 1024, 0x20),
    ]),
  );

const httpCases: FuzzCase[] = [
  contentTypeCase('text/plain (policy)', 'text/plain', 415, 'unsupported_media_type'),
  contentTypeCase(
    'application/json; charset=utf-16',
    'application/json; charset=utf-16',
    415,
    'unsupported_media_type',
  ),
  contentTypeCase(
    'application/json; charset=latin1',
    'application/json; charset=ISO-8859-1',
    415,
    'unsupported_media_type',
  ),
  contentTypeCase(
    'application/json; charset="UTF-8" (quoted, upper case)',
    'application/json; charset="UTF-8"',
    202,
  ),
  contentTypeCase('application/jsonx', 'application/jsonx', 415, 'unsupported_media_type'),
  contentTypeCase(
    'multipart/form-data',
    'multipart/form-data; boundary=x',
    415,
    'unsupported_media_type',
  ),
  {
    name: 'no Content-Length on a bulk',
    request: (m) =>
      rawPost(
        '/events/bulk',
        ['Content-Type: application/json'],
        `{"events":[${JSON.stringify(event(m))}]}`,
      ),
    status: 411,
    code: 'length_required',
  },
  {
    name: 'an empty Content-Length value',
    request: (m) =>
      rawPost(
        '/events',
        ['Content-Type: application/json', 'Content-Length: '],
        JSON.stringify(event(m)),
      ),
    status: 411,
    code: 'length_required',
  },
  {
    // 20.30's parser drops the connection before any handler runs; 20.57 lets the handler refuse it.
    name: 'Content-Length: 99999999999 (closed by uWS 20.30, 413 on 20.57)',
    request: (m) =>
      rawPost(
        '/events',
        ['Content-Type: application/json', 'Content-Length: 99999999999'],
        JSON.stringify(event(m)),
      ),
    status: perUwsBuild({ '20.30': null, '20.57': 413 }),
    code: perUwsBuild({ '20.30': undefined, '20.57': 'payload_too_large' }),
  },
  {
    name: 'Content-Length: -1 (closed by uWS 20.30, 400 from uWS 20.57)',
    request: (m) =>
      rawPost(
        '/events',
        ['Content-Type: application/json', 'Content-Length: -1'],
        JSON.stringify(event(m)),
      ),
    status: perUwsBuild({ '20.30': null, '20.57': 400 }),
  },
  {
    name: 'Content-Length: 1e3 (closed by uWS 20.30, 400 from uWS 20.57)',
    request: (m) =>
      rawPost(
        '/events',
        ['Content-Type: application/json', 'Content-Length: 1e3'],
        JSON.stringify(event(m)),
      ),
    status: perUwsBuild({ '20.30': null, '20.57': 400 }),
  },
  {
    name: 'Content-Length: "n, n" (closed by uWS 20.30, 400 from uWS 20.57)',
    request: (m) => {
      const body = JSON.stringify(event(m));
      return rawPost(
        '/events',
        ['Content-Type: application/json', `Content-Length: ${body.length}, ${body.length}`],
        body,
      );
    },
    status: perUwsBuild({ '20.30': null, '20.57': 400 }),
  },
  {
    name: 'two Content-Length headers with different values',
    request: (m) => {
      const body = JSON.stringify(event(m));
      return rawPost(
        '/events',
        ['Content-Type: application/json', `Content-Length: ${body.length}`, 'Content-Length: 2'],
        body,
      );
    },
    status: 400,
    code: 'bad_framing',
  },
  {
    name: 'Transfer-Encoding: gzip with Content-Length (closed by uWS 20.30, 400 from uWS 20.57)',
    request: (m) => {
      const body = JSON.stringify(event(m));
      return rawPost(
        '/events',
        [
          'Content-Type: application/json',
          `Content-Length: ${body.length}`,
          'Transfer-Encoding: gzip',
        ],
        body,
      );
    },
    status: perUwsBuild({ '20.30': null, '20.57': 400 }),
  },
  {
    // The hidden POST arrives while the 411 is still pending, so uWS drops the connection: the
    // client sees no answer, and the hidden request never runs (it once did: fixed).
    name: 'a chunked bulk hiding a second request after its last chunk (closed, nothing stored)',
    request: (m) => {
      const smuggled = jsonPost('/events', JSON.stringify(event(`${m}-smuggled`))).toString(
        'latin1',
      );
      return rawPost(
        '/events/bulk',
        ['Content-Type: application/json', 'Transfer-Encoding: chunked'],
        `2\r\n{}\r\n0\r\n\r\n${smuggled}`,
      );
    },
    status: null,
  },
  {
    // uWS reads 10 bytes as the body, then the rest as a request pipelined behind a pending one:
    // 20.30 closes the connection there; 20.57 lets pulse answer the 10 bytes. Nothing is stored.
    name: 'Content-Length shorter than the body (closed by uWS 20.30, 400 on 20.57; nothing stored)',
    request: (m) => {
      const body = JSON.stringify(event(m));
      return rawPost(
        '/events',
        ['Content-Type: application/json', 'Content-Length: 10'],
        body + jsonPost('/events', JSON.stringify(event(`${m}-2`))).toString('latin1'),
      );
    },
    status: perUwsBuild({ '20.30': null, '20.57': 400 }),
    code: perUwsBuild({ '20.30': undefined, '20.57': 'invalid_json' }),
  },
  {
    name: 'a gzip bulk inflating past MAX_BODY_BYTES (3 MB of padding)',
    request: (m) => bulk(gzipBomb(m), ['Content-Encoding: gzip']),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'gzip inside gzip (inflates once, to bytes that are not UTF-8)',
    request: (m) =>
      single(gzipSync(gzipSync(JSON.stringify(event(m)))), ['Content-Encoding: gzip']),
    ...invalidEncoding,
  },
  {
    name: 'Content-Encoding: deflate',
    request: (m) => single(JSON.stringify(event(m)), ['Content-Encoding: deflate']),
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'Content-Encoding: gzip, gzip',
    request: (m) =>
      single(gzipSync(gzipSync(JSON.stringify(event(m)))), ['Content-Encoding: gzip, gzip']),
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    // uWS 20.30 has no header cap below its buffer; 20.57 answers 431 itself.
    name: 'a 64 KB header (accepted by uWS 20.30, 431 from uWS 20.57)',
    request: (m) => single(JSON.stringify(event(m)), [`X-Padding: ${'a'.repeat(64 * 1024)}`]),
    status: perUwsBuild({ '20.30': 202, '20.57': 431 }),
    stored: oneRow,
  },
  {
    name: 'a 1 MB header (closed by uWS 20.30, 431 from uWS 20.57)',
    request: (m) => single(JSON.stringify(event(m)), [`X-Padding: ${'a'.repeat(1024 * 1024)}`]),
    status: perUwsBuild({ '20.30': null, '20.57': 431 }),
  },
  {
    name: '60 headers of 1 KB (closed by uWS 20.30, 431 from uWS 20.57)',
    request: (m) =>
      single(
        JSON.stringify(event(m)),
        Array.from({ length: 60 }, (_, i) => `X-H${i}: ${'b'.repeat(1000)}`),
      ),
    status: perUwsBuild({ '20.30': null, '20.57': 431 }),
  },
  // Over 4 KB, uWS 20.57 refuses the whole request head itself (431, plain text) before pulse's
  // MAX_HEADER_BYTES can name the header.
  contentTypeCase(
    'a Content-Type of 10 KB (over MAX_HEADER_BYTES)',
    `application/json${';'.repeat(10 * 1024)}`,
    431,
    headerTooLarge,
  ),
  ...['Content-Encoding', 'X-API-Key', 'Authorization', 'Origin'].map((header): FuzzCase => ({
    name: `a ${header} header of 10 KB (over MAX_HEADER_BYTES)`,
    request: (m) => single(JSON.stringify(event(m)), [`${header}: ${'a'.repeat(10 * 1024)}`]),
    status: 431,
    code: headerTooLarge,
  })),
  {
    // uWS refuses a length it cannot hold before any handler runs.
    name: 'a Content-Length of 10 KB of digits (closed by uWS)',
    request: (m) =>
      rawPost(
        '/events',
        ['Content-Type: application/json', `Content-Length: ${'1'.repeat(10 * 1024)}`],
        JSON.stringify(event(m)),
      ),
    status: perUwsBuild({ '20.30': null, '20.57': 431 }),
  },
  {
    name: 'a query string of 10 KB on a bulk (over MAX_HEADER_BYTES)',
    request: (m) =>
      jsonPost(`/events/bulk?${'&'.repeat(10 * 1024)}`, `{"events":[${JSON.stringify(event(m))}]}`),
    status: perUwsBuild({ '20.30': 414, '20.57': 431 }),
    code: perUwsBuild({ '20.30': 'uri_too_long', '20.57': undefined }),
  },
  {
    name: 'an If-None-Match of 10 KB on /metrics (over MAX_HEADER_BYTES)',
    request: () => rawGet('/metrics', [`If-None-Match: a${' '.repeat(10 * 1024)}b`]),
    status: 431,
    code: headerTooLarge,
  },
  {
    name: 'an If-None-Match of 8 KB of spaces on /metrics (parsed in one pass)',
    request: () => rawGet('/metrics', [`If-None-Match: a${' '.repeat(8000)}b`]),
    status: perUwsBuild({ '20.30': 200, '20.57': 431 }),
  },
  { name: '200 KB of [', request: () => single('['.repeat(200 * 1024)), ...invalidJson },
  {
    name: '200 KB of {"a": nesting',
    request: () => single('{"a":'.repeat(40 * 1024)),
    ...invalidJson,
  },
  {
    name: '200 KB of lone surrogates in metadata (checked before ajv)',
    request: (m) => single(spliced(m, `"metadata":{"a":[${'"\\ud800",'.repeat(22_000)}"a"]}`)),
    ...invalidField,
  },
  {
    name: 'a path with ../ is not resolved',
    request: (m) => jsonPost('/events/../events', JSON.stringify(event(m))),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'a NUL byte in the request line (closed by uWS 20.30, 505 from uWS 20.57)',
    request: (m) => {
      const request = single(JSON.stringify(event(m)));
      const firstLineEnd = request.indexOf('\r\n');
      return Buffer.concat([
        Buffer.from('POST /ev\0ents HTTP/1.1'),
        request.subarray(firstLineEnd),
      ]);
    },
    status: perUwsBuild({ '20.30': null, '20.57': 505 }),
  },
];

const corpus: [string, FuzzCase[]][] = [
  ['JSON syntax', syntaxCases],
  ['types and sizes', sizeCases],
  ['encodings', encodingCases],
  ['numbers', numberCases],
  ['prototype pollution', pollutionCases],
  ['SQL and log injection', injectionCases],
  ['HTTP abuse', httpCases],
];

const corpusCases = corpus.flatMap(([, cases]) => cases);
/** Cases whose body ran to the end, so a case that vanishes from the run is noticed. */
let casesPassed = 0;
/** Rows the tests after the corpus store on purpose. */
let rowsStoredAfterTheCorpus = 0;

for (const [group, cases] of corpus) {
  describe(group, () => {
    it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, fuzzCase) => {
      const marker = newMarker();
      const response = await rawRequest(port, fuzzCase.request(marker));
      expect([response?.status ?? null, problemCode(response)]).toEqual([
        fuzzCase.status,
        fuzzCase.code,
      ]);
      await expectAlive();
      const rows = await rowsFor(marker);
      if (fuzzCase.status === 202) fuzzCase.stored?.(rows, marker);
      else expect(rows).toEqual([]);
      casesPassed++;
    });
  });
}

describe('after the corpus', () => {
  it('ran and passed every case of the corpus, at least 60', () => {
    expect(corpusCases.length).toBeGreaterThanOrEqual(60);
    expect(casesPassed).toBe(corpusCases.length);
  });

  it('leaves Object.prototype unpolluted in the server process main thread', () => {
    // The server runs in this process (startTestServer), so this is its main thread.
    // Writer threads parse with JSON.parse, which makes __proto__ an own key, and only serialise
    // what they parsed; the stored-as-data case above reads the key back from the row.
    const probe: Record<string, unknown> = {};
    expect([
      probe.polluted,
      Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'),
    ]).toEqual([undefined, false]);
  });

  it('leaves Object.prototype unpolluted in a writer thread that stored __proto__ metadata', async () => {
    // The server's writer threads take no probes, so this runs the same writer module in a Piscina
    // thread of its own, loaded the way the server loads it, on the request texts the batcher sends.
    const marker = newMarker();
    const requests = [
      spliced(
        marker,
        '"metadata":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}',
      ),
      `{"events":[${spliced(`${marker}-b`, '"metadata":{"a":[{"__proto__":{"polluted":1}}]}')}]}`,
    ];
    const writer = new Piscina<InsertBatchTask, PollutionReport>({
      filename: new URL('./writer-thread-probe.ts', import.meta.url).href,
      execArgv: ['--import', 'tsx'],
      maxThreads: 1,
      workerData: {
        logLevel: 'silent',
        pool: {
          connectionString: db.dsn,
          applicationName: 'pulse-fuzz-probe',
          max: 1,
          connectTimeoutMs: 5000,
          statementTimeoutMs: 5000,
          queryTimeoutMs: 10_000,
        },
      } satisfies WriterThreadOptions,
    });
    const report = await writer.run({ requests }).finally(() => writer.destroy());
    expect(report).toEqual({
      kind: 'done',
      polluted: undefined,
      ownPolluted: false,
      constructorPolluted: undefined,
    });
    expect((await rowsFor(marker)).map((row) => row.metadata_text).sort()).toEqual([
      '{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 1}}}',
      '{"a": [{"__proto__": {"polluted": 1}}]}',
    ]);
    rowsStoredAfterTheCorpus += requests.length;
  });

  it('keeps the events table intact after the SQL-looking strings: one row per accepted case', async () => {
    // Every accepted case sends one event, checked stored once; nothing else may add or remove rows.
    const accepted = corpusCases.filter((fuzzCase) => fuzzCase.status === 202).length;
    const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
    expect(rows[0]!.n).toBe(accepted + rowsStoredAfterTheCorpus);
  });
});

// ---------------------------------------------------------------------------------------------
// Connection-level cases that need more than one request or an unanswered wait

describe('connections', () => {
  it('answers an HTTP/1.0 request with 505 on uWS 20.57, not at all on 20.30 (closed at its idle timeout)', async () => {
    const marker = newMarker();
    const body = JSON.stringify(event(marker));
    const [get, post] = await Promise.all([
      rawRequest(port, 'GET /healthz HTTP/1.0\r\n\r\n'),
      rawRequest(
        port,
        `POST /events HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      ),
    ]);
    expect([get?.status ?? null, post?.status ?? null]).toEqual(
      perUwsBuild({ '20.30': [null, null], '20.57': [505, 505] }),
    );
    await expectAlive();
    expect(await rowsFor(marker)).toEqual([]);
  });

  it('closes a connection that pipelines a second POST; the first is in doubt, the second never runs', async () => {
    const first = newMarker();
    const second = newMarker();
    const connection = await openRaw(port);
    connection.write(
      Buffer.concat([one(first), bulk(`{"events":[${JSON.stringify(event(second))}]}`)]),
    );
    expect(await connection.next()).toBeNull();
    // The unanswered first request may be stored: resending it is what a client does, and
    // idempotency makes that safe (exactly one row either way).
    const retry = await rawRequest(port, one(first));
    expect(retry?.status).toBe(202);
    expect((await rowsFor(first)).length).toBe(1);
    expect(await rowsFor(second)).toEqual([]);
    await expectAlive();
  });

  it('answers pipelined GETs in order, and a POST pipelined behind a GET', async () => {
    const marker = newMarker();
    const connection = await openRaw(port);
    connection.write(
      Buffer.concat([
        ...Array.from({ length: 10 }, (_, i) =>
          Buffer.from(rawGet(i % 2 === 0 ? '/healthz' : '/nope')),
        ),
        one(marker),
      ]),
    );
    const statuses: (number | undefined)[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await connection.next())?.status);
    expect(statuses).toEqual([200, 404, 200, 404, 200, 404, 200, 404, 200, 404, 202]);
    expect(await rowsFor(marker)).toHaveLength(1);
  });

  it('stores nothing when the client aborts mid-body, and keeps serving', async () => {
    const marker = newMarker();
    const body = JSON.stringify(event(marker));
    const connection = await openRaw(port);
    connection.write(
      rawPost(
        '/events',
        ['Content-Type: application/json', `Content-Length: ${body.length}`],
        body.slice(0, 20),
      ),
    );
    // A request answered or pending shows up in the next one on another connection.
    await expectAlive();
    connection.destroy();
    await expectAlive();
    expect(await rowsFor(marker)).toEqual([]);
  });

  it('keeps serving normal requests while 5000 idle keep-alive connections are open', async () => {
    const idle: RawConnection[] = [];
    try {
      // Batches keep the test process's own connect queue short on two cores.
      for (let batch = 0; batch < 10; batch++) {
        const opened = await Promise.all(Array.from({ length: 500 }, () => openRaw(port)));
        // One request each makes them real keep-alive connections, then they sit idle.
        for (const connection of opened) connection.write(rawGet('/healthz'));
        const answers = await Promise.all(opened.map((c) => c.next()));
        expect(answers.filter((a) => a?.status === 200)).toHaveLength(500);
        idle.push(...opened);
      }
      const marker = newMarker();
      const stored = await rawRequest(port, one(marker));
      expect(stored?.status).toBe(202);
      expect(await rowsFor(marker)).toHaveLength(1);
      await expectAlive();
      expect(idle.filter((c) => !c.isClosed).length).toBeGreaterThan(0);
    } finally {
      for (const connection of idle) connection.destroy();
    }
  });
});
