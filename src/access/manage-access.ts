// What the admin API and the CLI do to projects and keys, and the JSON they answer with: one
// implementation for both. A key's secret exists only in the answer that creates it.
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { ProjectRow } from '../sql/access-rows.js';
import { insertKey, type KeyRow, type KeyScope } from '../sql/api-keys.js';

/** Recognisable when leaked: the scope is in the prefix. */
export const secretPrefixes: Readonly<Record<KeyScope, string>> = {
  write: 'pk_w_',
  read: 'pk_r_',
  admin: 'pk_a_',
};

/** 192 random bits: nothing to guess, so a plain SHA-256 of it is a safe thing to store. */
const secretBytes = 24;

export function projectJson(row: ProjectRow): { id: string; name: string; created_at: number } {
  return { id: String(row.id), name: row.name, created_at: row.created_at };
}

/** A project with its limits: what PATCH answers. */
export function projectSettingsJson(row: ProjectRow) {
  return {
    ...projectJson(row),
    ingest_events_per_second: row.ingest_events_per_second,
    metrics_requests_per_minute: row.metrics_requests_per_minute,
    cors_origins: row.cors_origins,
  };
}

export function keyJson(row: KeyRow) {
  return {
    id: String(row.id),
    scope: row.scope,
    name: row.name,
    created_at: row.created_at,
    last_used_at: row.last_used_at,
    revoked: row.revoked,
  };
}

export async function createKey(
  pool: pg.Pool,
  projectId: number,
  scope: KeyScope,
  name: string | null,
): Promise<{ id: string; key: string; scope: KeyScope; project_id: string }> {
  const secret = secretPrefixes[scope] + randomBytes(secretBytes).toString('base64url');
  const secretSha256 = createHash('sha256').update(secret).digest();
  const row = await insertKey(pool, { projectId, scope, name, secretSha256 });
  return { id: String(row.id), key: secret, scope, project_id: String(projectId) };
}

/** A path or CLI id: decimal, at most 10 digits, within int4; null for anything else. */
export function parseId(text: string): number | null {
  if (!/^[0-9]{1,10}$/.test(text)) return null;
  const id = Number(text);
  return id >= 1 && id <= 2147483647 ? id : null;
}
