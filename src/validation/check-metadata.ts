// The metadata pre-pass: what JSON Schema cannot say about metadata (depth, finite and safe numbers)
// and the strings Postgres cannot store, in one walk that stops at the depth limit, before ajv.
import eventSchema from './schemas/event.schema.json' with { type: 'json' };
import { childPath, type FieldErrorList } from './field-error-list.js';

/** The schema's test for strings PostgreSQL can store (no U+0000, no unpaired surrogates). */
const storable = new RegExp(eventSchema.$defs.storableString.pattern, 'u');
export const unstorableMessage = 'must not contain U+0000 or unpaired UTF-16 surrogates';
/** The schema's metadata key limit, in characters (code points). */
const maxKeyCharacters = eventSchema.$defs.jsonObject.propertyNames.maxLength;
/** A key longer than this many UTF-16 units breaks the schema whatever it holds (a code point
 *  takes at most two). */
const maxKeyUnits = 2 * maxKeyCharacters;

/** Depth and integer checks that JSON Schema cannot express. Runs before ajv, whose recursive
 *  schema would otherwise recurse as deep as the attacker nests. */
export function checkMetadata(
  value: unknown,
  path: string,
  maxDepth: number,
  errors: FieldErrorList,
): void {
  // Not an object: ajv reports the wrong type.
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
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
          errors.add(
            childPath(nodePath, key),
            `must NOT have more than ${maxKeyCharacters} characters`,
          );
          return false;
        }
        if (!storable.test(key)) errors.add(nodePath, unstorableMessage);
        if (!walk((node as Record<string, unknown>)[key], childPath(nodePath, key), depth + 1))
          return false;
      }
    }
    return true;
  };
  walk(value, path, 1);
}
