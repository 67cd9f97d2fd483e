// If-None-Match against the current ETag (RFC 9110 §13.1.2), in one pass over the value: it arrives
// on the thread that serves every request, so nothing here may backtrack.

/** True when the value is `*` or lists the tag, weakly compared: `W/"x"` matches `"x"`. A malformed
 *  list stops matching where it breaks, so at worst the full answer is sent. */
export function ifNoneMatchIncludes(value: string, etag: string): boolean {
  if (value.trim() === '*') return true;
  let i = 0;
  while (i < value.length) {
    const c = value[i];
    if (c === ' ' || c === '\t' || c === ',') {
      i++;
      continue;
    }
    const open = value.startsWith('W/', i) ? i + 2 : i;
    if (value[open] !== '"') return false;
    const close = value.indexOf('"', open + 1);
    if (close < 0) return false;
    if (close + 1 - open === etag.length && value.startsWith(etag, open)) return true;
    i = close + 1;
  }
  return false;
}
