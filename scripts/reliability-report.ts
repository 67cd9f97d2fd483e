// Rewrites the results table in docs/RELIABILITY.md from the latest test-results/*.json (the figures
// every chaos scenario writes), so the document always carries one run's numbers, not a mix of
// hand-copied ones. Run after `npm test` or `npm run test:chaos`.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScenarioFigures } from '../test/chaos/lib/scenario-results.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const resultsDir = join(root, 'test-results');
const docFile = join(root, 'docs/RELIABILITY.md');
const begin = '<!-- results:begin (npm run reliability:report) -->';
const end = '<!-- results:end -->';

const figures = readdirSync(resultsDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as ScenarioFigures)
  .filter((f) => typeof f.scenario === 'string' && f.requests !== undefined);

const int = (n: number) => n.toLocaleString('en-US');
const status = (f: ScenarioFigures, test: (code: number) => boolean) =>
  Object.entries(f.requests.by_status)
    .filter(([code]) => test(Number(code)))
    .reduce((sum, [, n]) => sum + n, 0);

const header = [
  'scenario',
  'pass',
  'requests',
  '2xx',
  '4xx',
  '5xx',
  'net err',
  'events acked',
  'in doubt',
  'lost',
  'phantom',
  'leaked',
  'dupes',
  'deadlocks',
  'p50 / p99 ms',
  'recovery ms',
  'RSS max MB',
];
const rows = figures.map((f) => [
  f.scenario,
  f.pass ? '✅' : `❌ ${f.failures.join('; ')}`,
  int(f.requests.sent),
  int(status(f, (c) => c >= 200 && c < 300)),
  int(status(f, (c) => c >= 400 && c < 500)),
  int(status(f, (c) => c >= 500)),
  int(f.requests.net_errors),
  int(f.events.acked),
  int(f.events.in_doubt),
  String(f.lost),
  String(f.phantom),
  String(f.leaked),
  String(f.duplicates),
  String(f.deadlocks),
  `${f.latency_ms.p50} / ${f.latency_ms.p99}`,
  f.recovery_ms.length > 0 ? f.recovery_ms.map((ms) => int(Math.round(ms))).join(', ') : '–',
  f.rss_mb.max > 0 ? String(Math.round(f.rss_mb.max * 10) / 10) : '–',
]);
const runDates = figures.map((f) => f.started_at).sort();
const table = [
  `Latest run: ${runDates[0] ?? '–'} to ${runDates.at(-1) ?? '–'} (${figures.length} scenarios; per-scenario details in \`test-results/<scenario>.json\`).`,
  '',
  `| ${header.join(' | ')} |`,
  `| ${header.map((_, i) => (i < 2 ? '---' : '--:')).join(' | ')} |`,
  ...rows.map((r) => `| ${r.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`),
].join('\n');

const doc = readFileSync(docFile, 'utf8');
const from = doc.indexOf(begin);
const to = doc.indexOf(end);
if (from < 0 || to < from) throw new Error(`${docFile} lacks the ${begin} … ${end} markers`);
writeFileSync(docFile, `${doc.slice(0, from + begin.length)}\n\n${table}\n\n${doc.slice(to)}`);
console.log(`docs/RELIABILITY.md: ${figures.length} scenarios`);
