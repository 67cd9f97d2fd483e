// The field errors one 400 answer names (`events[3].timestamp` → its messages), bounded in number
// and in path length.
import type { FieldErrors } from '../errors.js';

/** A body can break a rule in every value it holds, under paths as long as all the keys above it:
 *  one answer looks at this many errors and cuts each path at maxPathLength, so it stays near the
 *  size of the request instead of errors × path length. */
export const maxReportedErrors = 1000;
const maxPathLength = 512;

/** One answer's field errors: the first maxReportedErrors, each path cut at maxPathLength. */
export class FieldErrorList {
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

/** `base.key`, or `key` at the top. */
export function childPath(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}
