// Every rule of the event schema and of the checks JSON Schema cannot express, through the same
// entry points the routes call. `now` is fixed so the clock rule is exact.
import { describe, expect, it } from 'vitest';
import type { FieldErrors } from '../../src/errors.js';
import {
  parseJsonBody,
  validateBulk,
  validateBulkPartially,
  validateSingleEvent,
  type ValidationLimits,
  type ValidationResult,
} from '../../src/validation/validate-events.js';

const limits: ValidationLimits = {
  bulkMaxEvents: 100,
  clockSkewSeconds: 300,
  metadataMaxDepth: 32,
};
const now = 1_800_000_000;
const base = { event_name: 'purchase', user_id: 'u1', timestamp: 1_700_000_000 };

const storable = 'must not contain U+0000 or unpaired UTF-16 surrogates';
const unsafeInteger = 'integers must be within ±(2^53 − 1); send larger ones as strings';

function single(value: unknown): ValidationResult {
  return validateSingleEvent(value, limits, now);
}

function bulk(value: unknown): ValidationResult {
  return validateBulk(value, limits, now);
}

/** The field errors of a refused payload (fails the test if it was accepted). */
function fieldErrors(result: ValidationResult): FieldErrors {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.events)}`);
  expect(result.problem.code).toBe('validation_failed');
  return result.problem.errors ?? {};
}

/** Body text → parsed value, the way the route builds it (so `__proto__` stays an own key). */
function parsed(text: string): unknown {
  const result = parseJsonBody(Buffer.from(text, 'utf8'));
  if (!result.ok) throw new Error(`expected valid JSON: ${result.problem.detail}`);
  return result.value;
}

function nested(depth: number): Record<string, unknown> {
  let node: Record<string, unknown> = { leaf: 1 };
  for (let level = 1; level < depth; level++) node = { a: node };
  return node;
}

describe('a single event', () => {
  it('accepts the minimal event and returns it unchanged', () => {
    expect(single(base)).toEqual({ ok: true, events: [base] });
  });

  it('accepts an event with every optional field at its limits', () => {
    const event = {
      ...base,
      event_id: 'i'.repeat(128),
      event_name: 'n'.repeat(128),
      user_id: 'u'.repeat(128),
      channel: 'c'.repeat(64),
      campaign_id: 'k'.repeat(64),
      tags: Array.from({ length: 50 }, (_, i) => `${i}`.padEnd(64, 't')),
      metadata: { plan: 'pro', price: 9.99, ok: true, none: null, list: [1, 'two'] },
    };
    expect(single(event)).toEqual({ ok: true, events: [event] });
  });

  it('names every missing required field', () => {
    expect(fieldErrors(single({}))).toEqual({
      event_name: ['is required'],
      user_id: ['is required'],
      timestamp: ['is required'],
    });
  });

  it('explains which fields failed in the detail', () => {
    const result = single({ ...base, user_id: '', foo: 1 });
    expect(result).toEqual({
      ok: false,
      problem: {
        code: 'validation_failed',
        detail: 'Invalid fields: foo, user_id.',
        errors: {
          foo: ['is not a known field'],
          user_id: ['must NOT have fewer than 1 characters'],
        },
      },
    });
  });

  it.each([null, [base], 'event', 42])('refuses a body that is not an object (%j)', (value) => {
    expect(fieldErrors(single(value))).toEqual({ '(body)': ['must be object'] });
  });

  it.each(['event_id', 'event_name', 'user_id'])('refuses an empty %s', (field) => {
    expect(fieldErrors(single({ ...base, [field]: '' }))).toEqual({
      [field]: ['must NOT have fewer than 1 characters'],
    });
  });

  it.each(['event_id', 'event_name', 'user_id'])('refuses a %s of 129 characters', (field) => {
    expect(fieldErrors(single({ ...base, [field]: 'x'.repeat(129) }))).toEqual({
      [field]: ['must NOT have more than 128 characters'],
    });
  });

  it.each(['channel', 'campaign_id'])('refuses a %s of 65 characters', (field) => {
    expect(fieldErrors(single({ ...base, [field]: 'x'.repeat(65) }))).toEqual({
      [field]: ['must NOT have more than 64 characters'],
    });
  });

  it.each(['channel', 'campaign_id'])('accepts an empty %s', (field) => {
    expect(single({ ...base, [field]: '' }).ok).toBe(true);
  });

  it.each(['event_id', 'event_name', 'user_id', 'channel', 'campaign_id'])(
    'refuses a %s that is not a string',
    (field) => {
      expect(fieldErrors(single({ ...base, [field]: 7 }))).toEqual({ [field]: ['must be string'] });
    },
  );

  it('counts lengths in code points, so 64 emoji fit a 64-character field', () => {
    expect(single({ ...base, channel: '😀'.repeat(64) }).ok).toBe(true);
  });

  it('refuses 65 emoji in a 64-character field', () => {
    expect(fieldErrors(single({ ...base, channel: '😀'.repeat(65) }))).toEqual({
      channel: ['must NOT have more than 64 characters'],
    });
  });

  it('refuses an unknown top-level field', () => {
    expect(fieldErrors(single({ ...base, eventName: 'x' }))).toEqual({
      eventName: ['is not a known field'],
    });
  });
});

describe('the timestamp', () => {
  it('refuses 0', () => {
    expect(fieldErrors(single({ ...base, timestamp: 0 }))).toEqual({ timestamp: ['must be >= 1'] });
  });

  it('refuses a negative value', () => {
    expect(fieldErrors(single({ ...base, timestamp: -5 }))).toEqual({
      timestamp: ['must be >= 1'],
    });
  });

  it('accepts 1', () => {
    expect(single({ ...base, timestamp: 1 }).ok).toBe(true);
  });

  it('refuses a fraction', () => {
    expect(fieldErrors(single({ ...base, timestamp: 1_700_000_000.5 }))).toEqual({
      timestamp: ['must be integer'],
    });
  });

  it('refuses a numeric string', () => {
    expect(fieldErrors(single({ ...base, timestamp: '1700000000' }))).toEqual({
      timestamp: ['must be integer'],
    });
  });

  it('accepts exactly now + CLOCK_SKEW_SECONDS', () => {
    expect(single({ ...base, timestamp: now + 300 }).ok).toBe(true);
  });

  it('refuses one second past now + CLOCK_SKEW_SECONDS', () => {
    expect(fieldErrors(single({ ...base, timestamp: now + 301 }))).toEqual({
      timestamp: [`must not be later than now + 300 s (${now + 300})`],
    });
  });

  it('uses the configured clock skew', () => {
    const result = validateSingleEvent(
      { ...base, timestamp: now + 1 },
      { ...limits, clockSkewSeconds: 0 },
      now,
    );
    expect(fieldErrors(result)).toEqual({
      timestamp: [`must not be later than now + 0 s (${now})`],
    });
  });

  it('refuses a timestamp past year 9999 with one message, not two', () => {
    expect(fieldErrors(single({ ...base, timestamp: 253_402_300_800 }))).toEqual({
      timestamp: ['must be <= 253402300799'],
    });
  });
});

describe('tags', () => {
  it('accepts 50 tags', () => {
    expect(single({ ...base, tags: Array.from({ length: 50 }, (_, i) => `t${i}`) }).ok).toBe(true);
  });

  it('refuses 51 tags', () => {
    expect(
      fieldErrors(single({ ...base, tags: Array.from({ length: 51 }, (_, i) => `t${i}`) })),
    ).toEqual({
      tags: ['must NOT have more than 50 items'],
    });
  });

  it('refuses an empty tag, naming its index', () => {
    expect(fieldErrors(single({ ...base, tags: ['a', ''] }))).toEqual({
      'tags[1]': ['must NOT have fewer than 1 characters'],
    });
  });

  it('refuses a tag of 65 characters, naming its index', () => {
    expect(fieldErrors(single({ ...base, tags: ['x'.repeat(65)] }))).toEqual({
      'tags[0]': ['must NOT have more than 64 characters'],
    });
  });

  it('refuses a tag that is not a string', () => {
    expect(fieldErrors(single({ ...base, tags: ['a', 3] }))).toEqual({
      'tags[1]': ['must be string'],
    });
  });

  it('refuses tags that are not an array', () => {
    expect(fieldErrors(single({ ...base, tags: 'a,b' }))).toEqual({ tags: ['must be array'] });
  });
});

describe('metadata', () => {
  it.each([[[]], [null], ['text'], [1]])(
    'refuses metadata that is not an object (%j)',
    (metadata) => {
      expect(fieldErrors(single({ ...base, metadata }))).toEqual({ metadata: ['must be object'] });
    },
  );

  it('accepts an empty object', () => {
    expect(single({ ...base, metadata: {} }).ok).toBe(true);
  });

  it(`accepts nesting of exactly METADATA_MAX_DEPTH (${limits.metadataMaxDepth}) levels`, () => {
    expect(single({ ...base, metadata: nested(32) }).ok).toBe(true);
  });

  it('refuses nesting one level deeper than METADATA_MAX_DEPTH', () => {
    expect(fieldErrors(single({ ...base, metadata: nested(33) }))).toEqual({
      metadata: ['must not nest deeper than 32 levels'],
    });
  });

  it('counts arrays as levels', () => {
    let node: unknown = 1;
    for (let level = 0; level < 32; level++) node = [node];
    expect(fieldErrors(single({ ...base, metadata: { a: node } }))).toEqual({
      metadata: ['must not nest deeper than 32 levels'],
    });
  });

  it('uses the configured depth', () => {
    const result = validateSingleEvent(
      { ...base, metadata: nested(3) },
      { ...limits, metadataMaxDepth: 2 },
      now,
    );
    expect(fieldErrors(result)).toEqual({ metadata: ['must not nest deeper than 2 levels'] });
  });

  it('refuses metadata nested 100000 levels deep without overflowing the stack', () => {
    const depth = 100_000;
    const body = `{"event_name":"e","user_id":"u","timestamp":1,"metadata":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    expect(fieldErrors(single(parsed(body)))).toEqual({
      metadata: ['must not nest deeper than 32 levels'],
    });
  });

  it('accepts the largest safe integer', () => {
    expect(
      single({ ...base, metadata: { n: Number.MAX_SAFE_INTEGER, m: -Number.MAX_SAFE_INTEGER } }).ok,
    ).toBe(true);
  });

  it('refuses an integer beyond 2^53, naming its path', () => {
    expect(
      fieldErrors(
        single(
          parsed(
            '{"event_name":"e","user_id":"u","timestamp":1,"metadata":{"a":{"n":9007199254740993}}}',
          ),
        ),
      ),
    ).toEqual({
      'metadata.a.n': [unsafeInteger],
    });
  });

  it('refuses a negative integer beyond -2^53 inside an array', () => {
    expect(fieldErrors(single({ ...base, metadata: { list: [1, -(2 ** 60)] } }))).toEqual({
      'metadata.list[1]': [unsafeInteger],
    });
  });

  it('refuses 1e400, which JSON.parse turns into Infinity', () => {
    expect(
      fieldErrors(
        single(parsed('{"event_name":"e","user_id":"u","timestamp":1,"metadata":{"n":1e400}}')),
      ),
    ).toEqual({
      'metadata.n': ['must be a finite number'],
    });
  });

  it('accepts a `__proto__` key as data and pollutes no prototype', () => {
    const value = parsed(
      '{"event_name":"e","user_id":"u","timestamp":1,"metadata":{"__proto__":{"polluted":true}}}',
    );
    const result = single(value);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const metadata = result.events[0]?.metadata as Record<string, unknown>;
    expect(Object.keys(metadata)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value).toEqual({
      polluted: true,
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('names a bad value under a `__proto__` key as an ordinary path', () => {
    const value = parsed(
      '{"event_name":"e","user_id":"u","timestamp":1,"metadata":{"__proto__":{"n":1e20}}}',
    );
    const errors = fieldErrors(single(value));
    expect(Object.keys(errors)).toEqual(['metadata.__proto__.n']);
    expect(errors['metadata.__proto__.n']).toEqual([unsafeInteger]);
    expect(({} as Record<string, unknown>).n).toBeUndefined();
  });
});

describe('strings Postgres cannot store', () => {
  const nul = 'a\u0000b';
  const loneHigh = 'a\uD800b';
  const loneLow = 'a\uDC00';

  it.each(['event_id', 'event_name', 'user_id', 'channel', 'campaign_id'])(
    'refuses U+0000 in %s',
    (field) => {
      expect(fieldErrors(single({ ...base, [field]: nul }))).toEqual({ [field]: [storable] });
    },
  );

  it.each(['event_id', 'event_name', 'user_id', 'channel', 'campaign_id'])(
    'refuses a lone high surrogate in %s',
    (field) => {
      expect(fieldErrors(single({ ...base, [field]: loneHigh }))).toEqual({ [field]: [storable] });
    },
  );

  it.each(['event_id', 'event_name', 'user_id', 'channel', 'campaign_id'])(
    'refuses a lone low surrogate in %s',
    (field) => {
      expect(fieldErrors(single({ ...base, [field]: loneLow }))).toEqual({ [field]: [storable] });
    },
  );

  it('refuses U+0000 in a tag', () => {
    expect(fieldErrors(single({ ...base, tags: ['ok', nul] }))).toEqual({ 'tags[1]': [storable] });
  });

  it('refuses a lone surrogate in a tag', () => {
    expect(fieldErrors(single({ ...base, tags: [loneLow] }))).toEqual({ 'tags[0]': [storable] });
  });

  it('refuses U+0000 in a metadata value', () => {
    expect(fieldErrors(single({ ...base, metadata: { a: nul } }))).toEqual({
      'metadata.a': [storable],
    });
  });

  it('refuses a lone surrogate in a nested metadata value', () => {
    expect(fieldErrors(single({ ...base, metadata: { a: { b: ['ok', loneHigh] } } }))).toEqual({
      'metadata.a.b[1]': [storable],
    });
  });

  it('refuses U+0000 in a metadata key', () => {
    expect(fieldErrors(single({ ...base, metadata: { [nul]: 1 } }))).toEqual({
      metadata: [storable],
    });
  });

  it('refuses a lone surrogate in a nested metadata key', () => {
    expect(fieldErrors(single({ ...base, metadata: { a: { [loneLow]: 1 } } }))).toEqual({
      'metadata.a': [storable],
    });
  });

  it('refuses an escaped lone surrogate that arrives as JSON text', () => {
    expect(
      fieldErrors(single(parsed('{"event_name":"e","user_id":"\\ud800","timestamp":1}'))),
    ).toEqual({
      user_id: [storable],
    });
  });

  it('accepts emoji (valid surrogate pairs) in every string field, tags and metadata', () => {
    const emoji = 'a😀b🎉';
    const event = {
      ...base,
      event_id: emoji,
      event_name: emoji,
      user_id: emoji,
      channel: emoji,
      campaign_id: emoji,
      tags: [emoji],
      metadata: { [emoji]: emoji, list: [emoji] },
    };
    expect(single(event)).toEqual({ ok: true, events: [event] });
  });
});

describe('a bulk request', () => {
  const events = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ ...base, event_id: `e${i}` }));

  it('accepts one event', () => {
    expect(bulk({ events: events(1) })).toEqual({ ok: true, events: events(1) });
  });

  it('accepts BULK_MAX_EVENTS events', () => {
    expect(bulk({ events: events(100) })).toEqual({ ok: true, events: events(100) });
  });

  it('refuses 0 events, naming `events`', () => {
    expect(bulk({ events: [] })).toEqual({
      ok: false,
      problem: {
        code: 'validation_failed',
        detail: 'The bulk request must contain 1 to 100 events.',
        errors: { events: ['must contain 1 to 100 events (got 0)'] },
      },
    });
  });

  it('refuses BULK_MAX_EVENTS + 1 events, naming `events`', () => {
    expect(fieldErrors(bulk({ events: events(101) }))).toEqual({
      events: ['must contain 1 to 100 events (got 101)'],
    });
  });

  it('refuses an oversized array before looking at its events', () => {
    const bad = Array.from({ length: 101 }, () => ({ nonsense: true }));
    expect(fieldErrors(bulk({ events: bad }))).toEqual({
      events: ['must contain 1 to 100 events (got 101)'],
    });
  });

  it('uses the configured bulk size', () => {
    const result = validateBulk({ events: events(3) }, { ...limits, bulkMaxEvents: 2 }, now);
    expect(fieldErrors(result)).toEqual({ events: ['must contain 1 to 2 events (got 3)'] });
  });

  it('refuses a body without `events`', () => {
    expect(fieldErrors(bulk({}))).toEqual({ events: ['is required'] });
  });

  it('refuses `events` that is not an array', () => {
    expect(fieldErrors(bulk({ events: { 0: base } }))).toEqual({ events: ['must be array'] });
  });

  it('refuses an unknown top-level field', () => {
    expect(fieldErrors(bulk({ events: events(1), batch: 1 }))).toEqual({
      batch: ['is not a known field'],
    });
  });

  it('names the bad event by index, as in events[3].timestamp', () => {
    const list: unknown[] = events(5);
    list[3] = { ...base, timestamp: 0 };
    expect(bulk({ events: list })).toEqual({
      ok: false,
      problem: {
        code: 'validation_failed',
        detail: 'Invalid field: events[3].timestamp.',
        errors: { 'events[3].timestamp': ['must be >= 1'] },
      },
    });
  });

  it('names a future timestamp by index', () => {
    const list: unknown[] = events(3);
    list[2] = { ...base, timestamp: now + 301 };
    expect(fieldErrors(bulk({ events: list }))).toEqual({
      'events[2].timestamp': [`must not be later than now + 300 s (${now + 300})`],
    });
  });

  it('names every bad event, not only the first', () => {
    const list: unknown[] = events(4);
    list[0] = { ...base, user_id: undefined };
    list[2] = { ...base, tags: [''], extra: 1 };
    expect(fieldErrors(bulk({ events: JSON.parse(JSON.stringify(list)) as unknown[] }))).toEqual({
      'events[0].user_id': ['is required'],
      'events[2].extra': ['is not a known field'],
      'events[2].tags[0]': ['must NOT have fewer than 1 characters'],
    });
  });

  it('names an event that is not an object', () => {
    expect(fieldErrors(bulk({ events: [base, 'x'] }))).toEqual({ 'events[1]': ['must be object'] });
  });

  it('names bad metadata by event index', () => {
    const list: unknown[] = events(2);
    list[1] = { ...base, metadata: { n: 2 ** 60 } };
    expect(fieldErrors(bulk({ events: list }))).toEqual({
      'events[1].metadata.n': [unsafeInteger],
    });
  });

  it('names too-deep metadata by event index', () => {
    const list: unknown[] = events(2);
    list[1] = { ...base, metadata: nested(33) };
    expect(fieldErrors(bulk({ events: list }))).toEqual({
      'events[1].metadata': ['must not nest deeper than 32 levels'],
    });
  });

  it('names U+0000 in a later event by index', () => {
    const list: unknown[] = events(3);
    list[2] = { ...base, channel: '\u0000' };
    expect(fieldErrors(bulk({ events: list }))).toEqual({ 'events[2].channel': [storable] });
  });
});

describe('a bulk request with partial=true', () => {
  const partial = (value: unknown) => validateBulkPartially(value, limits, now);
  const good = (i: number) => ({ ...base, event_id: `p${i}` });
  /** Each kind of invalid event, at a given index. */
  const invalidEvents: unknown[] = [
    { ...base, timestamp: 0 },
    { ...base, user_id: undefined },
    { ...base, extra: 1 },
    { ...base, timestamp: now + 301 },
    { ...base, user_id: 'a\u0000b' },
    { ...base, tags: [''] },
    { ...base, metadata: { n: 2 ** 60 } },
    'not an object',
    null,
  ];

  it('keeps the valid events and names each left-out one exactly as the 400 would', () => {
    const emptyName = { ...base, event_name: '' };
    for (const [k, bad] of invalidEvents.entries()) {
      // Each left-out event is named as the all-or-nothing path names it when it is the only bad
      // one (that path stops at a metadata error before the schema checks of the others).
      const expected = {
        ...fieldErrors(bulk({ events: [good(0), bad, good(2), good(3)] })),
        ...fieldErrors(bulk({ events: [good(0), good(1), good(2), emptyName] })),
      };
      expect(partial({ events: [good(0), bad, good(2), emptyName] }), `invalid #${k}`).toEqual({
        ok: true,
        events: [good(0), good(2)],
        rejected: { count: 2, errors: expected },
      });
    }
  });

  it('still checks every other event when one nests metadata too deep', () => {
    // All-or-nothing validation stops at the depth error (ajv would recurse as deep as the
    // attacker nests); partial validation judges each event alone, so the rest are still checked.
    const list = [{ ...base, metadata: nested(40) }, { ...base, user_id: 7 }, good(2)];
    const result = partial({ events: list });
    if (!result.ok) throw new Error('expected the valid event to be kept');
    expect(result.events).toEqual([good(2)]);
    expect(Object.keys(result.rejected.errors).sort()).toEqual([
      expect.stringMatching(/^events\[0\]\.metadata/),
      'events[1].user_id',
    ]);
  });

  it('answers rejected count 0 when every event is valid', () => {
    expect(partial({ events: [good(0), good(1)] })).toEqual({
      ok: true,
      events: [good(0), good(1)],
      rejected: { count: 0, errors: {} },
    });
  });

  it('refuses the request when no event is valid, naming every one', () => {
    expect(fieldErrors(partial({ events: [invalidEvents[0], invalidEvents[1]] }))).toEqual({
      'events[0].timestamp': ['must be >= 1'],
      'events[1].user_id': ['is required'],
    });
  });

  it('refuses a wrong envelope whole, as without partial', () => {
    expect(fieldErrors(partial([good(0)]))).toEqual({ '(body)': ['must be object'] });
    expect(fieldErrors(partial({}))).toEqual({ events: ['is required'] });
    expect(fieldErrors(partial({ events: {} }))).toEqual({ events: ['must be array'] });
    expect(fieldErrors(partial({ events: [] }))).toEqual({
      events: ['must contain 1 to 100 events (got 0)'],
    });
    expect(
      fieldErrors(partial({ events: Array.from({ length: 101 }, (_, i) => good(i)) })),
    ).toEqual({ events: ['must contain 1 to 100 events (got 101)'] });
    expect(fieldErrors(partial({ events: [good(0)], batch: 1 }))).toEqual({
      batch: ['is not a known field'],
    });
    // The same envelope errors as the all-or-nothing path, field for field.
    for (const envelope of [[good(0)], {}, { events: {} }, { events: [good(0)], batch: 1 }])
      expect(fieldErrors(partial(envelope))).toEqual(fieldErrors(bulk(envelope)));
  });
});

describe('parseJsonBody', () => {
  it('parses a JSON body', () => {
    expect(parseJsonBody(Buffer.from('{"a":[1,"b"]}'))).toEqual({
      ok: true,
      value: { a: [1, 'b'] },
      text: '{"a":[1,"b"]}',
    });
  });

  it('strips a leading UTF-8 byte order mark', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]);
    // The text handed on to the writer threads is without the BOM too.
    expect(parseJsonBody(body)).toEqual({ ok: true, value: { a: 1 }, text: '{"a":1}' });
  });

  it('keeps multi-byte characters intact', () => {
    expect(parseJsonBody(Buffer.from('{"a":"é😀"}'))).toEqual({
      ok: true,
      value: { a: 'é😀' },
      text: '{"a":"é😀"}',
    });
  });

  it('refuses invalid UTF-8 as invalid_encoding', () => {
    expect(
      parseJsonBody(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])),
    ).toEqual({
      ok: false,
      problem: {
        code: 'invalid_encoding',
        detail: 'The body contains bytes that are not valid UTF-8.',
      },
    });
  });

  it('refuses a UTF-8-encoded lone surrogate (CESU bytes) as invalid_encoding', () => {
    const result = parseJsonBody(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]));
    expect(result.ok ? 'accepted' : result.problem.code).toBe('invalid_encoding');
  });

  it('refuses a truncated multi-byte sequence as invalid_encoding', () => {
    const result = parseJsonBody(Buffer.from([0x22, 0xe2, 0x82, 0x22]));
    expect(result.ok ? 'accepted' : result.problem.code).toBe('invalid_encoding');
  });

  it("refuses malformed JSON as invalid_json in its own words, never the parser's", () => {
    const result = parseJsonBody(Buffer.from('{"secret-looking":'));
    expect(result).toEqual({
      ok: false,
      problem: { code: 'invalid_json', detail: 'The body is not valid JSON.' },
    });
  });

  it('refuses an empty body as invalid_json', () => {
    const result = parseJsonBody(Buffer.alloc(0));
    expect(result.ok ? 'accepted' : result.problem.code).toBe('invalid_json');
  });

  it('keeps the last value of a duplicate key', () => {
    expect(parseJsonBody(Buffer.from('{"a":1,"b":2,"a":3}'))).toMatchObject({
      ok: true,
      value: { a: 3, b: 2 },
    });
  });

  it('strips only one byte order mark', () => {
    const bom = [0xef, 0xbb, 0xbf];
    const result = parseJsonBody(Buffer.from([...bom, ...bom, ...Buffer.from('1')]));
    expect(result.ok ? 'accepted' : result.problem.code).toBe('invalid_json');
  });
});
