import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configVariableNames, configVariables, faultInjectionSwitch } from '../../src/config.js';
import { problemCatalogue } from '../../src/errors.js';

const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const configurationDoc = readFileSync(
  new URL('../../docs/configuration.md', import.meta.url),
  'utf8',
);

/** `| code | status | title |` rows of docs/errors.md. */
function documentedRows(): Record<string, { status: number; title: string }> {
  const rows: Record<string, { status: number; title: string }> = {};
  for (const match of docs.matchAll(/^\|\s*`(\w+)`\s*\|\s*(\d{3})\s*\|\s*([^|]+?)\s*\|/gm)) {
    rows[match[1]!] = { status: Number(match[2]), title: match[3]!.trim() };
  }
  return rows;
}

describe('the error catalogue', () => {
  it('is documented in docs/errors.md with the same statuses and titles', () => {
    expect(documentedRows()).toEqual(
      Object.fromEntries(
        Object.entries(problemCatalogue).map(([code, e]) => [
          code,
          { status: e.status, title: e.title },
        ]),
      ),
    );
  });
});

interface DocumentedVariable {
  readonly name: string;
  readonly fallback: string;
  readonly accepts: string;
}

/** `| `NAME` | default | accepts | what |` rows; backticks dropped from the cells. */
function documentedVariables(markdown: string): DocumentedVariable[] {
  const cell = (text: string) => text.replace(/`/g, '').trim();
  return [...markdown.matchAll(/^\|\s*`([A-Z_]+)`[^|]*\|([^|]*)\|([^|]*)\|/gm)].map((m) => ({
    name: m[1]!,
    fallback: cell(m[2]!),
    accepts: cell(m[3]!),
  }));
}

/** What a row must say for one of `configVariables`: the default as the doc prints it (`—` for
 *  none), and what it accepts: an integer variable's range `min–max` (the doc may add after it),
 *  any other variable's `accepts` text as config.ts words it. */
function expectedRow(name: string): { fallback: string; accepts: string } {
  const variable = Object.values(configVariables).find((v) => v.name === name);
  if (!variable) return { fallback: 'not a variable of src/config.ts', accepts: '' };
  const fallback = Array.isArray(variable.fallback)
    ? variable.fallback.join(',')
    : String(variable.fallback);
  const range = /^an integer (\d+–\d+)/.exec(variable.accepts)?.[1];
  return { fallback: fallback === '' ? '—' : fallback, accepts: range ?? variable.accepts };
}

describe.each([
  ['docs/configuration.md', configurationDoc],
  ['README.md', readme],
])('the configuration table of %s', (_path, markdown) => {
  const rows = documentedVariables(markdown).filter((row) => row.name !== 'POSTGRES_DSN');

  it('names only variables the service reads', () => {
    expect(
      rows.map((row) => row.name).filter((name) => !configVariableNames.includes(name)),
    ).toEqual([]);
  });

  it('gives each variable the default and the range src/config.ts has', () => {
    const documented = rows.map(({ name, fallback, accepts }) => {
      const expected = expectedRow(name);
      // An integer range may be followed by a note ("(0 = off)", "≥ `BULK_MAX_EVENTS`").
      const range =
        /^\d+–\d+$/.test(expected.accepts) &&
        [' ', ','].some((after) => accepts.startsWith(expected.accepts + after));
      return { name, fallback, accepts: range ? expected.accepts : accepts };
    });
    expect(documented).toEqual(rows.map(({ name }) => ({ name, ...expectedRow(name) })));
  });
});

describe('docs/configuration.md', () => {
  it('lists every environment variable the service reads', () => {
    const documented = new Set(documentedVariables(configurationDoc).map((row) => row.name));
    documented.add('DATABASE_URL'); // shares the POSTGRES_DSN row
    expect(configVariableNames.filter((name) => !documented.has(name))).toEqual([]);
  });
});

describe('README.md', () => {
  it('stays short enough to read in ten minutes: 12 KiB at most', () => {
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(12 * 1024);
  });
});

describe('the test-only fault switch', () => {
  it('is named in no document a user reads', () => {
    const documents = [
      'README.md',
      ...readdirSync(new URL('../../docs', import.meta.url)).map((name) => `docs/${name}`),
    ];
    expect(
      documents.filter((path) =>
        readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8').includes(
          faultInjectionSwitch.name,
        ),
      ),
    ).toEqual([]);
  });
});
