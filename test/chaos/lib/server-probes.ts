// What a chaos scenario reads from outside the server: its Prometheus exposition
// (/internal/metrics) and the database's own statistics.
import type { ChaosPostgres } from './chaos-postgres.js';
import type { ChaosServer } from './server-process.js';

/** SIGTERM (graceful drain) and wait for the exit; SIGKILL if it takes longer than `withinMs`. */
export async function stopServer(server: ChaosServer, withinMs = 20_000): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), withinMs);
  await server.exited;
  clearTimeout(timer);
}

/** 'ERROR:  deadlock detected' lines Postgres logged. */
export function loggedDeadlocks(db: ChaosPostgres): number {
  return db.logLines.filter((l) => l.includes('deadlock detected')).length;
}

/** The value of one sample in the Prometheus text exposition, or undefined if absent. */
export async function readGauge(
  serverUrl: string,
  name: string,
  labels = '',
): Promise<number | undefined> {
  const res = await fetch(`${serverUrl}/internal/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

/** pg_stat_database.deadlocks of the current database (cumulative since start). */
export async function deadlockCount(db: ChaosPostgres): Promise<number> {
  // A backend flushes its counters at exit, or when idle (up to ~10 s later): read it after the
  // servers stopped, or cross-check with the 'deadlock detected' lines in the log.
  const [row] = await db.query<{ deadlocks: string }>(
    'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(row?.deadlocks ?? 0);
}

/** Backends per application_name, the chaos client's own excluded. */
export async function connectionsByApplication(db: ChaosPostgres): Promise<Record<string, number>> {
  const rows = await db.query<{ application_name: string; n: number }>(
    `SELECT application_name, count(*)::int AS n FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name LIKE 'pulse-%'
     GROUP BY application_name ORDER BY application_name`,
  );
  return Object.fromEntries(rows.map((r) => [r.application_name, r.n]));
}

export function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
