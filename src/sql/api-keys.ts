// The statements of the admin API and the CLI on keys. Only a key's SHA-256 is ever stored.
import type pg from 'pg';

export type KeyScope = 'write' | 'read' | 'admin';

export interface KeyRow {
  readonly id: number;
  readonly project_id: number;
  readonly scope: KeyScope;
  readonly name: string | null;
  /** Epoch seconds. */
  readonly created_at: number;
  readonly last_used_at: number | null;
  readonly revoked: boolean;
}

const keyColumns = `id, project_id, scope, name, extract(epoch FROM created_at)::bigint::int AS created_at,
  extract(epoch FROM last_used_at)::bigint::int AS last_used_at, revoked_at IS NOT NULL AS revoked`;

export async function insertKey(
  pool: pg.Pool,
  key: {
    readonly projectId: number;
    readonly scope: KeyScope;
    readonly name: string | null;
    readonly secretSha256: Buffer;
  },
): Promise<KeyRow> {
  const { rows } = await pool.query<KeyRow>(
    `INSERT INTO api_keys (project_id, scope, name, secret_sha256) VALUES ($1, $2, $3, $4)
     RETURNING ${keyColumns}`,
    [key.projectId, key.scope, key.name, key.secretSha256],
  );
  return rows[0]!;
}

export async function listKeys(pool: pg.Pool, projectId: number): Promise<KeyRow[]> {
  const { rows } = await pool.query<KeyRow>(
    `SELECT ${keyColumns} FROM api_keys WHERE project_id = $1 ORDER BY id`,
    [projectId],
  );
  return rows;
}

export async function findKey(pool: pg.Pool, id: number): Promise<KeyRow | null> {
  const { rows } = await pool.query<KeyRow>(`SELECT ${keyColumns} FROM api_keys WHERE id = $1`, [
    id,
  ]);
  return rows[0] ?? null;
}

/** Revoking twice keeps the first time. */
export async function revokeKey(pool: pg.Pool, id: number): Promise<void> {
  await pool.query(
    'UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND revoked_at IS NULL',
    [id],
  );
}
