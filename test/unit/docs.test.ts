import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configVariableNames, faultInjectionSwitch } from '../../src/config.js';
import { problemCatalogue } from '../../src/errors.js';

const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

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

describe('the README configuration table', () => {
  it('lists every environment variable the service reads', () => {
    const documented = new Set([...readme.matchAll(/^\|\s*`([A-Z_]+)`/gm)].map((m) => m[1]));
    documented.add('DATABASE_URL'); // shares the POSTGRES_DSN row
    expect(configVariableNames.filter((name) => !documented.has(name))).toEqual([]);
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
