// Refuses a configuration that would open more connections than the server accepts: at scale a
// 53300 "too many clients" would otherwise surface as 503s under load, long after start-up.
import type pg from 'pg';

export interface ConnectionBudget {
  /** Connections this deployment opens: processes × per process. */
  readonly needed: number;
  /** max_connections less the slots reserved for superusers and pg_use_reserved_connections. */
  readonly available: number;
  /** Connections held by other clients (not this service). */
  readonly inUse: number;
}

const budgetSql = `
SELECT current_setting('max_connections')::int
       - current_setting('superuser_reserved_connections')::int
       - coalesce(current_setting('reserved_connections', true), '0')::int AS available,
       (SELECT count(*)::int FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND application_name NOT LIKE 'pulse-%') AS in_use`;

export async function readConnectionBudget(
  pool: pg.Pool,
  needed: number,
): Promise<ConnectionBudget> {
  const { rows } = await pool.query<{ available: number; in_use: number }>(budgetSql);
  return { needed, available: rows[0]!.available, inUse: rows[0]!.in_use };
}
