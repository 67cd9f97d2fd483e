// A bulk request whose body text the test writes itself: JSON.stringify cannot produce `1e400`
// (it writes null) and throws on nesting past ~10⁴ levels, and hostile input needs both.
/** Placeholder a test puts in an event value, replaced by raw JSON text in the body. */
export const rawJsonMarker = '__raw_json_marker__';

export function bulkBodyWithRaw(events: readonly unknown[], raw: string): string {
  return JSON.stringify({ events }).replace(JSON.stringify(rawJsonMarker), raw);
}
