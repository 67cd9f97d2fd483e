// `npm run bench:insert-cost`: what one writer INSERT costs by batch size, without HTTP or threads:
// the writers' own statement (insertEventRows) sent back to back on one connection, with the WAL
// flushed at each commit and without. Per statement: wall time, the backend's CPU (from /proc) and
// this process's (building the rows, pg's encoding). A durable batch's fixed cost against its cost
// per row is what decides how small a batch may usefully be.
import { pino } from 'pino';
import pg from 'pg';
import { insertEventRows, toEventRows } from '../src/sql/insert-events.js';
import type { IncomingEvent } from '../src/validation/validate-events.js';
import { integer, parseBenchOptions } from './lib/bench-options.js';
import { startBenchDatabase } from './lib/bench-database.js';
import { readConditions } from './lib/conditions.js';
import { median } from './lib/median.js';
import { readProcessCpuSeconds } from './lib/proc-stats.js';
import { progress } from './lib/progress.js';

const usage = `npm run bench:insert-cost -- [options]
  --runs N       repeat every measurement, report medians (3)
  --seconds S    seconds per batch size and commit mode (2)`;

const options = parseBenchOptions(
  process.argv.slice(2),
  { runs: integer(3, 1, 20), seconds: integer(2, 1, 60) },
  usage,
  (v) => v,
);

const batchSizes = [1, 5, 25, 100, 500];
const timestamp = Math.floor(Date.now() / 1000) - 60;
let counter = 0;
const nextEvent = (): IncomingEvent => {
  const n = counter++;
  return { event_id: `cost-${n}`, event_name: 'bench', user_id: `u${n % 10_000}`, timestamp };
};

interface Cost {
  readonly statementsPerSecond: number;
  readonly wallMicros: number;
  readonly postgresMicros: number;
  readonly clientMicros: number;
}

async function measure(dsn: string, rows: number, durable: boolean): Promise<Cost> {
  const pool = new pg.Pool({
    connectionString: dsn,
    max: 1,
    options: `-c synchronous_commit=${durable ? 'on' : 'off'}`,
  });
  try {
    const { rows: found } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const backend = found[0]!.pid;
    const batch = () => toEventRows(Array.from({ length: rows }, nextEvent));
    for (let i = 0; i < 20; i++) await insertEventRows(pool, batch());
    const backendBefore = readProcessCpuSeconds(backend);
    const clientBefore = process.cpuUsage();
    const startedAt = performance.now();
    let statements = 0;
    while (performance.now() - startedAt < options.seconds * 1000) {
      await insertEventRows(pool, batch());
      statements++;
    }
    const wallSeconds = (performance.now() - startedAt) / 1000;
    const client = process.cpuUsage(clientBefore);
    return {
      statementsPerSecond: statements / wallSeconds,
      wallMicros: (wallSeconds / statements) * 1e6,
      postgresMicros: ((readProcessCpuSeconds(backend) - backendBefore) / statements) * 1e6,
      clientMicros: (client.user + client.system) / statements,
    };
  } finally {
    await pool.end();
  }
}

async function main(): Promise<void> {
  const conditions = readConditions();
  const database = await startBenchDatabase(pino({ level: 'warn' }, pino.destination(2)));
  const results = new Map<string, Cost[]>();
  try {
    for (let run = 1; run <= options.runs; run++) {
      const name = `pulse_bench_insert_cost_${run}`;
      const dsn = await database.createFresh(name);
      for (const durable of [true, false])
        for (const rows of batchSizes) {
          progress(`run ${run}: ${rows} row(s), ${durable ? 'durable' : 'no flush'}`);
          const key = `${durable}/${rows}`;
          results.set(key, [...(results.get(key) ?? []), await measure(dsn, rows, durable)]);
        }
      await database.drop(name);
    }
  } finally {
    await database.stop();
  }
  const m = (costs: Cost[], pick: (c: Cost) => number) => median(costs.map(pick));
  const lines = [
    `commit ${conditions.commit}${conditions.dirty ? ' (dirty)' : ''}, node ${conditions.node}, ${conditions.cores}× ${conditions.cpuModel}; medians of ${options.runs} run(s) of ${options.seconds} s`,
    '',
    '| commit | rows | statements/s | rows/s | wall µs/statement | Postgres CPU µs/statement | per row | client CPU µs/statement |',
    '| --- | --: | --: | --: | --: | --: | --: | --: |',
  ];
  for (const durable of [true, false])
    for (const rows of batchSizes) {
      const costs = results.get(`${durable}/${rows}`)!;
      const perSecond = m(costs, (c) => c.statementsPerSecond);
      const postgres = m(costs, (c) => c.postgresMicros);
      lines.push(
        `| ${durable ? 'flushed' : 'not flushed'} | ${rows} | ${Math.round(perSecond)} | ${Math.round(perSecond * rows)} | ${Math.round(m(costs, (c) => c.wallMicros))} | ${Math.round(postgres)} | ${(postgres / rows).toFixed(1)} | ${Math.round(m(costs, (c) => c.clientMicros))} |`,
      );
    }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
