// Turns a request body into validated events or a problem naming every bad field. Runs in the uWS
// thread with the precompiled validators; nothing that reaches a batch can make Postgres reject
// it for a data reason (U+0000, lone surrogates, depth, unsafe integers are all caught here).
import { problem, type FieldErrors, type Problem } from '../errors.js';
import { validateBulkRequest, validateEvent, type IncomingEvent } from './generated/validators.js';
import eventSchema from './schemas/event.schema.json' with { type: 'json' };

export type { IncomingEvent };

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}
type CompiledValidator = ((data: unknown) => boolean) & { errors?: AjvError[] | null };

export interface ValidationLimits {
  readonly bulkMaxEvents: number;
  readonly clockSkewSeconds: number;
  readonly metadataMaxDepth: number;
}

export type ValidationResult =
  | { readonly ok: true; readonly events: IncomingEvent[] }
  | { readonly ok: false; readonly problem: Problem };

/** The schema's own upper bound (year 9999); above it the schema's message is the one shown. */
const maxTimestamp = 253_402_300_799;

/** The schema's test for strings PostgreSQL can store (no U+0000, no unpaired surrogates). */
const storable = new RegExp(eventSchema.$defs.storableString.pattern, 'u');
const unstorableMessage = 'must not contain U+0000 or unpaired UTF-16 surrogates';
/** The schema's metadata key limit, in characters (code points). */
const maxKeyCharacters = eventSchema.$defs.jsonObject.propertyNames.maxLength;
/** A key longer than this many UTF-16 units breaks the schema whatever it holds (a code point
 *  takes at most two). */
const maxKeyUnits = 2 * maxKeyCharacters;
/** A body can break a rule in every value it holds, under paths as long as all the keys above it:
 *  one answer looks at this many errors and cuts each path at maxPathLength, so it stays near the
 *  size of the request instead of errors × path length. */
const maxReportedErrors = 1000;
const maxPathLength = 512;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Strict UTF-8 (no silent U+FFFD), a leading BOM stripped, then JSON.parse (duplicate keys: last
 *  wins). The text is returned too: writer threads parse it again rather than receive a clone. */
export function parseJsonBody(
  body: Uint8Array,
): { ok: true; value: unknown; text: string } | { ok: false; problem: Problem } {
  let text: string;
  try {
    text = utf8.decode(body); // ignoreBOM: false strips one leading BOM
  } catch {
    return {
      ok: false,
      problem: problem('invalid_encoding', 'The body contains bytes that are not valid UTF-8.'),
    };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown, text };
  } catch {
    // Not V8's message: it quotes the body back and changes between Node versions.
    return { ok: false, problem: problem('invalid_json', 'The body is not valid JSON.') };
  }
}

export function validateSingleEvent(
  value: unknown,
  limits: ValidationLimits,
  nowSeconds: number,
): ValidationResult {
  const errors = new FieldErrorList();
  if (isObject(value)) checkMetadata(value.metadata, 'metadata', limits.metadataMaxDepth, errors);
  if (errors.isEmpty) collectAjvErrors(validateEvent as CompiledValidator, value, errors);
  if (isObject(value)) checkClock(value, '', limits, nowSeconds, errors);
  return errors.isEmpty ? { ok: true, events: [value as IncomingEvent] } : invalid(errors);
}

export function validateBulk(
  value: unknown,
  limits: ValidationLimits,
  nowSeconds: number,
): ValidationResult {
  const errors = new FieldErrorList();
  const events = isObject(value) ? value.events : undefined;
  // The size check comes first so an oversized array is refused before any event is looked at.
  if (Array.isArray(events) && (events.length === 0 || events.length > limits.bulkMaxEvents)) {
    errors.add('events', `must contain 1 to ${limits.bulkMaxEvents} events (got ${events.length})`);
    return invalid(
      errors,
      'The bulk request must contain 1 to ' + limits.bulkMaxEvents + ' events.',
    );
  }
  if (Array.isArray(events)) {
    events.forEach((event, i) => {
      if (isObject(event))
        checkMetadata(event.metadata, `events[${i}].metadata`, limits.metadataMaxDepth, errors);
    });
  }
  if (errors.isEmpty) collectAjvErrors(validateBulkRequest as CompiledValidator, value, errors);
  if (Array.isArray(events)) {
    events.forEach((event, i) => {
      if (isObject(event)) checkClock(event, `events[${i}].`, limits, nowSeconds, errors);
    });
  }
  return errors.isEmpty ? { ok: true, events: events as IncomingEvent[] } : invalid(errors);
}

export type PartialValidationResult =
  | {
      readonly ok: true;
      readonly events: IncomingEvent[];
      /** The events left out, by the same field paths a 400 would name (`events[3].timestamp`). */
      readonly rejected: { readonly count: number; readonly errors: FieldErrors };
    }
  | { readonly ok: false; readonly problem: Problem };

/** A bulk request with `?partial=true`: the envelope must be valid, then each event is judged on its
 *  own and the valid ones are kept. A 400 only when the envelope is wrong or no event is valid. */
export function validateBulkPartially(
  value: unknown,
  limits: ValidationLimits,
  nowSeconds: number,
): PartialValidationResult {
  const errors = new FieldErrorList();
  // What the bulk schema says of everything but the events, checked here because the schema
  // cannot be run on the envelope alone.
  if (!isObject(value)) {
    errors.add('(body)', 'must be object');
    return invalid(errors);
  }
  for (const key of Object.keys(value))
    if (key !== 'events') errors.add(key, 'is not a known field');
  const events = value.events;
  if (events === undefined) errors.add('events', 'is required');
  else if (!Array.isArray(events)) errors.add('events', 'must be array');
  else if (events.length === 0 || events.length > limits.bulkMaxEvents) {
    errors.add('events', `must contain 1 to ${limits.bulkMaxEvents} events (got ${events.length})`);
  }
  if (!errors.isEmpty || !Array.isArray(events)) return invalid(errors);

  const valid: IncomingEvent[] = [];
  let rejectedCount = 0;
  events.forEach((event: unknown, i) => {
    const result = validateSingleEvent(event, limits, nowSeconds);
    if (result.ok) {
      valid.push(result.events[0]!);
      return;
    }
    rejectedCount++;
    for (const [path, messages] of Object.entries(result.problem.errors ?? {})) {
      const inBulk = path === '(body)' ? `events[${i}]` : `events[${i}].${path}`;
      for (const message of messages) errors.add(inBulk, message);
    }
  });
  if (valid.length === 0) return invalid(errors);
  return { ok: true, events: valid, rejected: { count: rejectedCount, errors: errors.byPath } };
}

function invalid(errors: FieldErrorList, detail?: string): { ok: false; problem: Problem } {
  const fields = Object.keys(errors.byPath);
  const more = errors.leftOut
    ? `, and more (the first ${maxReportedErrors} errors are listed)`
    : '';
  return {
    ok: false,
    problem: problem(
      'validation_failed',
      detail ?? `Invalid field${fields.length > 1 ? 's' : ''}: ${fields.join(', ')}${more}.`,
      { errors: errors.byPath },
    ),
  };
}

/** Not expressible in a precompiled schema: the bound moves with the clock. */
function checkClock(
  event: Record<string, unknown>,
  prefix: string,
  limits: ValidationLimits,
  nowSeconds: number,
  errors: FieldErrorList,
) {
  const latest = nowSeconds + limits.clockSkewSeconds;
  if (
    typeof event.timestamp === 'number' &&
    event.timestamp > latest &&
    event.timestamp <= maxTimestamp
  ) {
    errors.add(
      `${prefix}timestamp`,
      `must not be later than now + ${limits.clockSkewSeconds} s (${latest})`,
    );
  }
}

/** Depth and integer checks that JSON Schema cannot express. Runs before ajv, whose recursive
 *  schema would otherwise recurse as deep as the attacker nests. */
function checkMetadata(
  value: unknown,
  path: string,
  maxDepth: number,
  errors: FieldErrorList,
): void {
  if (!isObject(value)) return; // ajv reports the wrong type
  const walk = (node: unknown, nodePath: string, depth: number): boolean => {
    if (typeof node === 'number') {
      // 1e400 parses to Infinity, which JSON cannot carry: storing it would silently become null.
      if (!Number.isFinite(node)) errors.add(nodePath, 'must be a finite number');
      // A JSON integer beyond 2^53 has already been rounded by JSON.parse: storing it would change data.
      if (Number.isInteger(node) && !Number.isSafeInteger(node)) {
        errors.add(nodePath, 'integers must be within ±(2^53 − 1); send larger ones as strings');
      }
      return true;
    }
    // Checked here, not left to ajv: its recursive schema copies every error gathered so far at
    // each value it returns from, so a body of many bad strings would take quadratic time.
    if (typeof node === 'string') {
      if (!storable.test(node)) errors.add(nodePath, unstorableMessage);
      return true;
    }
    if (node === null || typeof node !== 'object') return true;
    if (depth > maxDepth) {
      errors.add(path, `must not nest deeper than ${maxDepth} levels`);
      return false;
    }
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++)
        if (!walk(node[i], `${nodePath}[${i}]`, depth + 1)) return false;
    } else {
      for (const key of Object.keys(node)) {
        // Refused here, the key never reaches ajv, whose paths would repeat it in every error below.
        if (key.length > maxKeyUnits) {
          errors.add(join(nodePath, key), `must NOT have more than ${maxKeyCharacters} characters`);
          return false;
        }
        if (!storable.test(key)) errors.add(nodePath, unstorableMessage);
        if (!walk((node as Record<string, unknown>)[key], join(nodePath, key), depth + 1))
          return false;
      }
    }
    return true;
  };
  walk(value, path, 1);
}

function collectAjvErrors(
  validate: CompiledValidator,
  value: unknown,
  errors: FieldErrorList,
): void {
  if (validate(value)) return;
  for (const error of validate.errors ?? []) {
    if (errors.isFull) {
      errors.leftOut = true;
      return;
    }
    const base = fieldPath(error.instancePath);
    switch (error.keyword) {
      case 'required':
        errors.add(join(base, String(error.params.missingProperty)), 'is required');
        break;
      case 'additionalProperties':
        errors.add(join(base, String(error.params.additionalProperty)), 'is not a known field');
        break;
      case 'pattern':
        errors.add(base, unstorableMessage);
        break;
      case 'propertyNames':
        break; // the nested error on the name itself says what is wrong
      default: {
        const name = error.params.propertyName;
        const target = typeof name === 'string' ? join(base, name) : base;
        errors.add(target || '(body)', error.message ?? error.keyword);
      }
    }
  }
}

/** `/events/3/metadata/a~1b` → `events[3].metadata.a/b` (JSON Pointer → the seed's field paths). */
function fieldPath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    path = /^\d+$/.test(segment) ? `${path}[${segment}]` : join(path, segment);
  }
  return path;
}

function join(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

/** One answer's field errors: the first maxReportedErrors, each path cut at maxPathLength. */
class FieldErrorList {
  /** Null prototype: a field literally named `__proto__` must become a key, not reach Object.prototype. */
  readonly byPath = Object.create(null) as FieldErrors;
  private count = 0;
  /** True once an error was dropped for want of room. */
  leftOut = false;

  get isEmpty(): boolean {
    return this.count === 0;
  }

  get isFull(): boolean {
    return this.count >= maxReportedErrors;
  }

  add(path: string, message: string): void {
    if (this.isFull) {
      this.leftOut = true;
      return;
    }
    this.count++;
    const shown = path.length > maxPathLength ? `${path.slice(0, maxPathLength)}…` : path;
    const list = (this.byPath[shown] ??= []);
    if (!list.includes(message)) list.push(message);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
