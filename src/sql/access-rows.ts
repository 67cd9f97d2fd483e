// What every server process keeps in memory to check keys without a database read: the access
// version, every project's settings and every active key's digest. Read whole, on start-up and
// whenever access_version moves; last_used_at goes the other way, written in the background.
import type pg from 'pg';
import { withClient } from './create-pool.js';

export interface ProjectRow {
  readonly id: number;
  readonly name: string;
  /** Epoch seconds. */
  readonly created_at: number;
  readonly ingest_events_per_second: number | null;
  readonly metrics_requests_per_minute: number | null;
  readonly cors_origins: string[];
}

export interface ActiveKeyRow {
  readonly id: number;
  readonly project_id: number;
  readonly scope: 'write' | 'read' | 'admin';
  readonly secret_sha256: Buffer;
}

export interface AccessRows {
  /** access_version as text: a bigint. */
  readonly version: string;
  /** Any key ever stored, revoked ones included. */
  readonly anyKey: boolean;
  readonly projects: readonly ProjectRow[];
  readonly keys: readonly ActiveKeyRow[];
}

export const projectColumns = `id, name, extract(epoch FROM created_at)::bigint::int AS created_at,
  ingest_events_per_second, metrics_requests_per_minute, cors_origins`;

const versionSql = 'SELECT version::text AS version FROM access_version';

export async function readAccessVersion(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ version: string }>(versionSql);
  return rows[0]!.version;
}

/** One snapshot (REPEATABLE READ), so the version read belongs to the rows read. */
export async function readAccessRows(pool: pg.Pool): Promise<AccessRows> {
  return withClient(pool, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const version = (await client.query<{ version: string }>(versionSql)).rows[0]!.version;
    const anyKey = (
      await client.query<{ any: boolean }>('SELECT EXISTS (SELECT 1 FROM api_keys) AS any')
    ).rows[0]!.any;
    const projects = (await client.query<ProjectRow>(`SELECT ${projectColumns} FROM projects`))
      .rows;
    const keys = (
      await client.query<ActiveKeyRow>(
        'SELECT id, project_id, scope, secret_sha256 FROM api_keys WHERE revoked_at IS NULL',
      )
    ).rows;
    await client.query('COMMIT');
    return { version, anyKey, projects, keys };
  });
}

/** Moves last_used_at forward only: two processes may flush the same key in either order. */
const touchSql = `
UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, to_timestamp(u.used_ms / 1000.0))
FROM unnest($1::int[], $2::float8[]) AS u(id, used_ms)
WHERE k.id = u.id`;

export async function writeLastUsed(
  pool: pg.Pool,
  ids: readonly number[],
  usedMs: readonly number[],
): Promise<void> {
  await pool.query(touchSql, [ids, usedMs]);
}

/** The channel the access_version triggers notify on. */
export const accessChannel = 'pulse_access';
