// How long one tiny durable commit takes here (a round trip plus a WAL flush): the floor under
// every durable acknowledgement, since a writer's batch cannot be answered before its commit.
import pg from 'pg';
import { median } from './median.js';

export interface CommitLatency {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly commits: number;
}

/** `commits` sequential single-row autocommit INSERTs into a scratch table of that database. */
export async function measureCommitLatency(dsn: string, commits = 200): Promise<CommitLatency> {
  const client = new pg.Client({ connectionString: dsn, application_name: 'pulse-bench-commit' });
  await client.connect();
  try {
    await client.query('CREATE TABLE IF NOT EXISTS bench_commit_probe (n int)');
    const samples: number[] = [];
    for (let i = 0; i < commits; i++) {
      const startedAt = performance.now();
      await client.query('INSERT INTO bench_commit_probe VALUES ($1)', [i]);
      samples.push(performance.now() - startedAt);
    }
    samples.sort((a, b) => a - b);
    return {
      p50Ms: median(samples),
      p99Ms: samples[Math.min(samples.length - 1, Math.floor(samples.length * 0.99))] ?? NaN,
      commits,
    };
  } finally {
    await client.end();
  }
}
