// Every parser that reads request bytes, called directly on 200 KB of adversarial input with no
// length limit in the way. Linear code answers in milliseconds; the quadratic versions these pin
// took seconds at a third of the size, so the 1 s bound cannot flake either way.
import type { HttpRequest } from 'uWebSockets.js';
import { emptyAccessSnapshot } from '../../src/access/access-snapshot.js';
import { describe, expect, it } from 'vitest';
import { createApiKeyCheck } from '../../src/http/api-key-auth.js';
import { createCorsPolicy } from '../../src/http/cors.js';
import { ifNoneMatchIncludes } from '../../src/http/if-none-match.js';
import { checkBodyHead } from '../../src/http/read-body.js';
import { readHead, unreadHead, type RequestHead } from '../../src/http/request-head.js';
import { parseMetricsQuery } from '../../src/metrics/metrics-query.js';
import {
  parseJsonBody,
  validateBulk,
  validateBulkPartially,
  validateSingleEvent,
} from '../../src/validation/validate-events.js';

const size = 200 * 1024;
const boundMs = 1000;

/** Runs the parser once; its answer and whether it came within the bound. */
function timed<T>(parse: () => T): { answer: T; withinBound: boolean } {
  const started = performance.now();
  const answer = parse();
  return { answer, withinBound: performance.now() - started < boundMs };
}

/** `unit` repeated to `size` characters. */
const fill = (unit: string) => unit.repeat(Math.ceil(size / unit.length));

function head(overrides: Partial<RequestHead>): RequestHead {
  return {
    ...unreadHead,
    method: 'post',
    url: '/events',
    contentType: 'application/json',
    contentLength: '100',
    contentLengthCount: 1,
    ...overrides,
  };
}

describe('If-None-Match', () => {
  it.each([
    ['a, spaces, b', `a${fill(' ')}b`, false],
    ['commas', fill(','), false],
    ['quotes', fill('"'), false],
    ['weak prefixes', fill('W/'), false],
    ['an unterminated tag', `"${fill('x')}`, false],
    ['spaces and commas', fill(' ,'), false],
    ['other tags, then the tag', `${fill('"x", ')}"abc"`, true],
  ])('matches against 200 KB of %s in linear time', (_name, value, matches) => {
    expect(timed(() => ifNoneMatchIncludes(value, '"abc"'))).toEqual({
      answer: matches,
      withinBound: true,
    });
  });
});

describe('query strings', () => {
  it.each([
    ['ampersands', fill('&'), true],
    ['percent signs', fill('%'), false],
    ['repeated from=1 parameters', fill('from=1&'), false],
    ['truncated escapes', fill('%2'), false],
    ['a time zone name', `tz=${fill('A')}`, false],
    ['time zone characters', `tz=${fill('/')}&group_by=hour`, false],
    [
      'distinct unknown names',
      Array.from({ length: size / 8 }, (_, i) => `n${i}=1`).join('&'),
      false,
    ],
  ])('parses 200 KB of %s in linear time', (_name, query, ok) => {
    const { answer, withinBound } = timed(() =>
      parseMetricsQuery(query, 1_800_000_000, {
        maxWindowDays: 3660,
        maxBuckets: 10_000,
        maxSeriesBuckets: 100_000,
      }),
    );
    expect({ ok: answer.ok, withinBound }).toEqual({ ok, withinBound: true });
  });
});

describe('Content-Type and Content-Length', () => {
  const limits = { maxBodyBytes: 1024 * 1024, bodyTimeoutMs: 1000 };
  it.each([
    ['semicolons', { contentType: fill(';') }, 'unsupported_media_type'],
    ['semicolons after the media type', { contentType: `application/json${fill(';')}` }, null],
    [
      'charset parameters',
      { contentType: `application/json${fill('; charset=')}` },
      'unsupported_media_type',
    ],
    [
      'quotes in a charset',
      { contentType: `application/json; charset="${fill('"')}` },
      'unsupported_media_type',
    ],
    ['spaces around the media type', { contentType: `${fill(' ')}application/json ` }, null],
    ['digits in Content-Length', { contentLength: fill('1') }, 'bad_framing'],
  ])('checks 200 KB of %s in linear time', (_name, overrides, code) => {
    const { answer, withinBound } = timed(() => checkBodyHead(head(overrides), limits));
    expect({ code: answer?.code ?? null, withinBound }).toEqual({ code, withinBound: true });
  });
});

describe('API keys', () => {
  const authorize = createApiKeyCheck(['the-key'], () => emptyAccessSnapshot);
  it.each([
    ['Bearer, spaces, x', { authorization: `Bearer${fill(' ')}x` }],
    ['Bearer, spaces and tabs, x', { authorization: `Bearer${fill(' \t')}x` }],
    ['Bearer x, spaces, y', { authorization: `Bearer x${fill(' ')}y` }],
    ['Bearer, a long token, spaces, !', { authorization: `Bearer ${fill('x')}${fill(' ')}!` }],
    ['repeated Bearer x', { authorization: fill('Bearer x ') }],
    ['an X-API-Key', { apiKey: fill('k') }],
  ])('checks 200 KB of %s in linear time', (_name, overrides) => {
    expect(timed(() => authorize(head(overrides), 'write'))).toEqual({
      answer: { ok: false, problem: null },
      withinBound: true,
    });
  });
});

describe('Origin', () => {
  it('matches a 200 KB Origin against the allowlist in linear time', () => {
    const cors = createCorsPolicy(['https://app.example'], () => emptyAccessSnapshot);
    expect(timed(() => cors.responseHeaders(`https://app.example${fill('a')}`))).toEqual({
      answer: { vary: 'Origin' },
      withinBound: true,
    });
  });
});

describe('JSON bodies', () => {
  const limits = { bulkMaxEvents: 100, clockSkewSeconds: 300, metadataMaxDepth: 32 };
  const event = '"event_name":"e","user_id":"u","timestamp":1700000000';
  const longKey = 'k'.repeat(500);
  let deepUnderLongKeys = `[${fill('"\\ud800",')}"a"]`;
  for (let depth = 0; depth < 30; depth++)
    deepUnderLongKeys = `{"${longKey}":${deepUnderLongKeys}}`;

  it.each([
    ['opening brackets', fill('['), 'invalid_json'],
    ['nested objects', fill('{"a":'), 'invalid_json'],
    ['escaped quotes in a string', `{${event},"channel":"${fill('\\"')}"}`, 'validation_failed'],
    ['spaces around an event', `${fill(' ')}{${event}}${fill(' ')}`, null],
    [
      'lone surrogates in metadata',
      `{${event},"metadata":{"a":[${fill('"\\ud800",')}"a"]}}`,
      'validation_failed',
    ],
    [
      'non-finite numbers under a long metadata key',
      `{${event},"metadata":{"${fill('k')}":[${fill('1e400,')}1]}}`,
      'validation_failed',
    ],
    [
      'lone surrogates under 30 levels of 500-character keys',
      `{${event},"metadata":${deepUnderLongKeys}}`,
      'validation_failed',
    ],
    [
      'unknown 600-character fields',
      `{${event},${fill(`"${'u'.repeat(600)}":1,`)}"x":1}`,
      'validation_failed',
    ],
  ])('parses and validates 200 KB of %s in linear time', (_name, text, code) => {
    const { answer, withinBound } = timed(() => {
      const parsed = parseJsonBody(Buffer.from(text));
      if (!parsed.ok) return parsed;
      return validateSingleEvent(parsed.value, limits, 1_800_000_000);
    });
    expect({ code: answer.ok ? null : answer.problem.code, withinBound }).toEqual({
      code,
      withinBound: true,
    });
  });

  it('answers a body with errors in every value in about the size of the body', () => {
    const text = `{${event},"metadata":${deepUnderLongKeys}}`;
    const parsed = parseJsonBody(Buffer.from(text));
    const result = parsed.ok ? validateSingleEvent(parsed.value, limits, 1_800_000_000) : parsed;
    expect(JSON.stringify(result).length).toBeLessThan(text.length);
  });

  it('validates a bulk of 100 events with 2 KB of lone surrogates each in linear time', () => {
    const bad = `{${event},"metadata":{"a":[${'"\\ud800",'.repeat(220)}"a"]}}`;
    const events = Array.from({ length: 100 }, () => bad).join(',');
    const { answer, withinBound } = timed(() => {
      const parsed = parseJsonBody(Buffer.from(`{"events":[${events}]}`));
      if (!parsed.ok) return [parsed.problem.code];
      const whole = validateBulk(parsed.value, limits, 1_800_000_000);
      const partial = validateBulkPartially(parsed.value, limits, 1_800_000_000);
      return [whole.ok || whole.problem.code, partial.ok || partial.problem.code];
    });
    expect({ answer, withinBound }).toEqual({
      answer: ['validation_failed', 'validation_failed'],
      withinBound: true,
    });
  });
});

/** The parts of a uWS request readHead reads. */
function fakeRequest(headers: Record<string, string>, query = ''): HttpRequest {
  const request = {
    getMethod: () => 'get',
    getUrl: () => '/metrics',
    getQuery: () => query,
    getHeader: (name: string) => headers[name] ?? '',
    forEach: (visit: (name: string, value: string) => void) => {
      for (const [name, value] of Object.entries(headers)) visit(name, value);
    },
  };
  return request as unknown as HttpRequest;
}

describe('readHead', () => {
  it('passes headers and a query string of exactly MAX_HEADER_BYTES', () => {
    const value = 'a'.repeat(256);
    expect(readHead(fakeRequest({ authorization: value }, value), 256).tooLarge).toBeNull();
  });

  it('refuses the first header over MAX_HEADER_BYTES with a 431 that names it, not its value', () => {
    const secret = `Bearer ${'s'.repeat(300)}`;
    const problem = readHead(
      fakeRequest({ authorization: secret, origin: 'o'.repeat(300) }),
      256,
    ).tooLarge;
    expect(problem).toEqual({
      code: 'header_too_large',
      detail: 'The authorization header is longer than 256 bytes (MAX_HEADER_BYTES).',
    });
  });

  it('counts bytes, not characters: 100 three-byte characters are 300 bytes', () => {
    expect(readHead(fakeRequest({ origin: '€'.repeat(100) }), 256).tooLarge?.code).toBe(
      'header_too_large',
    );
  });

  it('refuses a query string over MAX_HEADER_BYTES with a 414', () => {
    expect(readHead(fakeRequest({}, '&'.repeat(257)), 256).tooLarge).toEqual({
      code: 'uri_too_long',
      detail: 'The query string is longer than 256 bytes (MAX_HEADER_BYTES).',
    });
  });
});
