// Turns a request body into validated events or a problem naming every bad field. Runs in the uWS
// thread with the precompiled validators; nothing that reaches a batch can make Postgres reject
// it for a data reason (U+0000, lone surrogates, depth, unsafe integers are all caught here).
import { problem, type FieldErrors, type Problem } from '../errors.js';
import { collectAjvErrors, type CompiledValidator } from './ajv-errors.js';
import { checkMetadata } from './check-metadata.js';
import { FieldErrorList, maxReportedErrors } from './field-error-list.js';
import { validateBulkRequest, validateEvent, type IncomingEvent } from './generated/validators.js';

export type { IncomingEvent };

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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
