// A pooled client that loses its connection between two statements emits 'error'; with no
// listener that is an uncaught exception that ends the process. create-pool.ts's checkOutClient
// and withClient attach one, so no other file may check a client out of a pool directly.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect, it } from 'vitest';

const srcDir = resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

it('checks pooled clients out only through create-pool.ts, which listens for their errors', () => {
  const direct = sourceFiles(srcDir)
    .filter((file) => /\bpool\.connect\(\)/.test(readFileSync(file, 'utf8')))
    .map((file) => relative(srcDir, file).split('\\').join('/'));
  expect(direct).toEqual(['sql/create-pool.ts']);
});
