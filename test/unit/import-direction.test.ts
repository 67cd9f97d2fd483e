// Imports run one way: a stage imports from the stages after it, never back up the path. Read from
// the source text of src/**/*.ts, so a move that turns an arrow around fails here, not in review.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const srcDir = resolve(import.meta.dirname, '../../src');

/** Today's folder pairs that import each other outside the metrics wing, to be removed. */
const knownMutualImports: readonly (readonly [string, string])[] = [
  // http-server.ts registers the route modules, which use the exchange and auth helpers beside it.
  ['http', 'http/routes'],
];

interface Import {
  /** Both paths relative to src/, with forward slashes. */
  readonly from: string;
  readonly to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const toSrcPath = (path: string) => relative(srcDir, path).split('\\').join('/');

// Static imports and re-exports (`import … from '…'`, `export … from '…'`, `import '…'`) and
// dynamic imports of a literal path; only relative specifiers can point into src/.
const specifierPattern =
  /(?:^|[\n;])\s*(?:import|export)\s(?:[^;'"]*?\sfrom\s*)?['"](\.[^'"]+)['"]|\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function readImports(): Import[] {
  return sourceFiles(srcDir).flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(specifierPattern)].map((match) => ({
      from: toSrcPath(file),
      to: toSrcPath(resolve(dirname(file), (match[1] ?? match[2])!)).replace(/\.js$/, '.ts'),
    })),
  );
}

/** A file's place: its folder, or for a file directly in src/ the file itself (config, errors,
 *  the composition root), so the modules every stage shares do not tie the stages together. */
const placeOf = (path: string) => (posix.dirname(path) === '.' ? path : posix.dirname(path));

const isUnder = (path: string, folder: string) => path.startsWith(`${folder}/`);

const imports = readImports();

describe('import direction', () => {
  it('reads the imports of the source tree', () => {
    expect(imports.some((i) => i.from === 'main.ts' && i.to === 'service.ts')).toBe(true);
  });

  it('never imports src/metrics or src/http from src/sql', () => {
    expect(
      imports.filter(
        (i) => isUnder(i.from, 'sql') && (isUnder(i.to, 'metrics') || isUnder(i.to, 'http')),
      ),
    ).toEqual([]);
  });

  it('never imports src/http from src/metrics', () => {
    expect(imports.filter((i) => isUnder(i.from, 'metrics') && isUnder(i.to, 'http'))).toEqual([]);
  });

  it('answers GET /metrics through the one metrics facade, never src/sql directly', () => {
    const route = 'http/routes/metrics-routes.ts';
    expect(
      imports
        .filter((i) => i.from === route)
        .filter((i) => isUnder(i.to, 'sql') || isUnder(i.to, 'metrics'))
        .map((i) => i.to),
    ).toEqual(['metrics/answer-metrics.ts']);
  });

  it('has no two folders importing each other beyond the known pairs', () => {
    const arrows = new Set(
      imports
        .map((i) => [placeOf(i.from), placeOf(i.to)] as const)
        .filter(([from, to]) => from !== to)
        .map(([from, to]) => `${from} → ${to}`),
    );
    const known = new Set(knownMutualImports.flatMap(([a, b]) => [`${a} → ${b}`, `${b} → ${a}`]));
    const mutual = [...arrows].filter((arrow) => {
      const [from, to] = arrow.split(' → ');
      return arrows.has(`${to} → ${from}`) && !known.has(arrow);
    });
    expect(mutual.sort()).toEqual([]);
  });

  it('still has every known mutual pair, so a removed one is taken off the list', () => {
    const arrows = new Set(imports.map((i) => `${placeOf(i.from)} → ${placeOf(i.to)}`));
    for (const [a, b] of knownMutualImports) {
      expect([arrows.has(`${a} → ${b}`), arrows.has(`${b} → ${a}`)]).toEqual([true, true]);
    }
  });
});
