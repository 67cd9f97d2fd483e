// The query parameters GET /metrics and GET /events/export share → a window of epoch seconds with
// its filters, or a problem listing every bad parameter. Pure: the cache key is made from its result.
import { problem, type FieldErrors, type Problem } from '../errors.js';
import type { MetricsWindow } from '../sql/read-metrics.js';
import { secondsPerDay } from '../sql/rollup-spans.js';

/** Adds a parameter's complaint to the problem's errors map. */
export type AddError = (field: string, message: string) => void;

const maxTimestamp = 253_402_300_799;

/** No window → the 24 h ending now; only from → up to now; only to → the 24 h before to. Both
 *  bounds inclusive. A parameter outside `allowed` is refused, as is one given twice. `more`
 *  parses the caller's own parameters into the same errors; it gets the window if that is valid. */
export function parseTimeWindow<More extends object = object>(
  rawQuery: string,
  nowSeconds: number,
  maxWindowDays: number,
  allowed: ReadonlySet<string>,
  more?: (params: URLSearchParams, window: MetricsWindow | undefined, add: AddError) => More,
): { ok: true; query: MetricsWindow & More } | { ok: false; problem: Problem } {
  const params = new URLSearchParams(rawQuery);
  const errors: FieldErrors = Object.create(null) as FieldErrors;
  const add = (field: string, message: string) => (errors[field] ??= []).push(message);
  for (const name of new Set(params.keys())) {
    if (!allowed.has(name)) add(name, 'is not a known parameter');
    else if (params.getAll(name).length > 1) add(name, 'must be given once');
  }
  const epoch = (name: string): number | undefined => {
    const raw = params.get(name);
    if (raw === null) return undefined;
    if (!/^\d{1,12}$/.test(raw) || Number(raw) > maxTimestamp) {
      add(name, `must be a non-negative integer of epoch seconds ≤ ${maxTimestamp}`);
      return undefined;
    }
    return Number(raw);
  };
  const text = (name: string): string | null => {
    const raw = params.get(name);
    if (raw === null) return null;
    if (raw.length === 0 || raw.length > 128 || raw.includes('\u0000'))
      add(name, 'must be 1 to 128 characters');
    return raw;
  };
  const fromParam = epoch('from');
  const toParam = epoch('to');
  const eventName = text('event_name');
  const channel = text('channel');

  const to = toParam ?? (fromParam !== undefined ? Math.max(nowSeconds, fromParam) : nowSeconds);
  const from = fromParam ?? Math.max(0, to - secondsPerDay);
  if (Object.keys(errors).length === 0) {
    if (from > to) add('from', 'must not be later than to');
    else if (to - from + 1 > maxWindowDays * secondsPerDay) {
      add('to', `the window must not exceed ${maxWindowDays} days (METRICS_MAX_WINDOW_DAYS)`);
    }
  }
  const window = { from, to, eventName, channel };
  const extra = more?.(params, Object.keys(errors).length === 0 ? window : undefined, add);
  if (Object.keys(errors).length > 0) {
    return {
      ok: false,
      problem: problem(
        'invalid_query',
        `Invalid parameter${Object.keys(errors).length > 1 ? 's' : ''}: ${Object.keys(errors).join(', ')}.`,
        {
          errors,
        },
      ),
    };
  }
  return { ok: true, query: Object.assign(window, extra as More) };
}
