// What an ingest request queues once its body is read: the validated events and the text the
// writer thread parses, taken from the body itself where that is safe.
import type { Config } from '../../config.js';
import type { FieldErrors, Problem } from '../../errors.js';
import {
  validateBulk,
  validateBulkPartially,
  validateSingleEvent,
  type IncomingEvent,
} from '../../validation/validate-events.js';

export type Shape = 'single' | 'bulk';

/** What a validated request hands on: its events, the text the writer parses, and in partial mode
 *  the events it left out. */
export function validatedRequest(
  parsed: { value: unknown; text: string },
  shape: Shape,
  partial: boolean,
  config: Config,
  nowSeconds: number,
):
  | {
      ok: true;
      events: IncomingEvent[];
      json: string;
      rejected?: { count: number; errors: FieldErrors };
    }
  | { ok: false; problem: Problem } {
  // Each answer is one literal: `{ ...result, json }` is a slow object on Node 20 that keeps the
  // parsed events alive until a full GC (see readHead).
  if (shape === 'single' || !partial) {
    const result =
      shape === 'single'
        ? validateSingleEvent(parsed.value, config, nowSeconds)
        : validateBulk(parsed.value, config, nowSeconds);
    return result.ok ? { ok: true, events: result.events, json: parsed.text } : result;
  }
  const result = validateBulkPartially(parsed.value, config, nowSeconds);
  if (!result.ok) return result;
  // The writer parses the request's text: with events left out, that is a text of the kept ones.
  const json =
    result.rejected.count === 0 ? parsed.text : JSON.stringify({ events: result.events });
  return { ok: true, events: result.events, json, rejected: result.rejected };
}

/** From this size up, a body that is queued as it arrived waits as its own UTF-8 bytes instead
 *  of its text: outside the JS heap, its memory goes back when the request is done, where dead
 *  text of this size waits in the heap for a major GC. */
const queuedBytesMinLength = 256 * 1024;

/** What the request queues: the body bytes when they are large, a buffer of their own (a small
 *  one can be a slice of a shared pool, which would be copied whole to the writer) and exactly
 *  the validated text; otherwise the text. */
export function queuedJson(json: string, text: string, body: Buffer): string | Uint8Array {
  return json === text &&
    body.length >= queuedBytesMinLength &&
    body.byteOffset === 0 &&
    body.buffer.byteLength === body.length
    ? body
    : json;
}
