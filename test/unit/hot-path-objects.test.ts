// On Node 20 (V8 11.3) an object literal that starts with a spread and goes on (`{ ...head, x }`)
// is ten times slower to build than the same literal written out, and V8 keeps what it holds alive
// through every minor GC until a full one: in the request head, a quarter of everything the uWS
// thread allocated survived each scavenge. Node 24 has no such cliff. The files every ingest
// request runs through are read here, so a copy-and-extend on that path fails in CI, not in a
// benchmark weeks later.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const srcDir = resolve(import.meta.dirname, '../../src');

/** The per-request path of POST /events and /events/bulk, durable and queued. */
const hotPaths = [
  'errors.ts',
  'access/caller.ts',
  'access/ingest-quota.ts',
  'http/api-key-auth.ts',
  'http/client-identity.ts',
  'http/cors.ts',
  'http/exchange.ts',
  'http/read-body.ts',
  'http/request-head.ts',
  'http/routes/ingest-payload.ts',
  'http/routes/ingest-routes.ts',
  'ingest',
  'validation/validate-events.ts',
  'validation/check-metadata.ts',
  'validation/field-error-list.ts',
];

function filesOf(path: string): string[] {
  const full = join(srcDir, path);
  if (path.endsWith('.ts')) return [full];
  return readdirSync(full)
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(full, name));
}

/** `file:line` of every object literal whose first member is a spread with more after it. */
function spreadsThenMore(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isObjectLiteralExpression(node) &&
      node.properties.length > 1 &&
      ts.isSpreadAssignment(node.properties[0]!)
    ) {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
      found.push(`${relative(srcDir, file)}:${line + 1}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('objects built on the ingest path', () => {
  it('finds the pattern it forbids', () => {
    const sample =
      'const head = { a: 1 };\nconst copy = { ...head, b: 2 };\nconst ok = { b: 2, ...head };';
    expect(spreadsThenMore(join(srcDir, 'sample.ts'), sample)).toEqual(['sample.ts:2']);
  });

  it('never copies an object by spread and adds to it', () => {
    const files = hotPaths.flatMap(filesOf);
    expect(files.length).toBeGreaterThan(hotPaths.length);
    const found = files.flatMap((file) => spreadsThenMore(file, readFileSync(file, 'utf8')));
    expect(found).toEqual([]);
  });
});
