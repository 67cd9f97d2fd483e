// Who a request acts for, as the key check decided: the project whose data it reads or writes, and
// the key that matched (rate limits and export slots count per key).

import { defaultProjectId } from '../sql/insert-events.js';

export { defaultProjectId };

export interface Caller {
  /** Names the matching key without revealing it; null when no key was needed. */
  readonly keyId: string | null;
  readonly projectId: number;
}

/** A request let in without a key: open mode, or a route that needs none. */
export const openCaller: Caller = Object.freeze({ keyId: null, projectId: defaultProjectId });

/** A key from API_KEYS: every scope, and every project for the admin API. */
export function isRootCaller(caller: Caller): boolean {
  return caller.keyId !== null && caller.keyId.startsWith('k');
}
