// The access rules one process holds in memory: projects with their limits, and every active
// key by the SHA-256 of its secret. Built whole from the rows and swapped in one assignment, so a
// request sees either the old rules or the new ones, never a mix.
import type { AccessRows, ProjectRow } from '../sql/access-rows.js';
import type { KeyScope } from '../sql/api-keys.js';
import type { Caller } from './caller.js';

export type { KeyScope } from '../sql/api-keys.js';

export interface StoredKey {
  readonly id: number;
  readonly scope: KeyScope;
  readonly caller: Caller;
  /** The key check's answer for it, made once: nothing is allocated per request. */
  readonly granted: { readonly ok: true; readonly caller: Caller };
  /** Epoch ms of its last use in this process, 0 if none since start-up; flushed in the background. */
  usedAtMs: number;
}

export interface AccessSnapshot {
  readonly version: string;
  /** No stored key, revoked ones included: with no API_KEYS either, the data routes are open. */
  readonly noStoredKeys: boolean;
  readonly projects: ReadonlyMap<number, ProjectRow>;
  /** Base64 of the secret's SHA-256 → key. */
  readonly keys: ReadonlyMap<string, StoredKey>;
  /** Every project's CORS origins together: what a preflight, which carries no key, may allow. */
  readonly projectOrigins: ReadonlySet<string>;
}

/** The snapshot from the rows; a key's last use carries over from the one it replaces. */
export function buildAccessSnapshot(
  rows: AccessRows,
  previous: AccessSnapshot | null,
): AccessSnapshot {
  const usedAtMs = new Map<number, number>();
  if (previous) for (const key of previous.keys.values()) usedAtMs.set(key.id, key.usedAtMs);
  const keys = new Map<string, StoredKey>();
  for (const row of rows.keys) {
    const caller = Object.freeze({ keyId: `s${row.id}`, projectId: row.project_id });
    keys.set(row.secret_sha256.toString('base64'), {
      id: row.id,
      scope: row.scope,
      caller,
      granted: { ok: true, caller },
      usedAtMs: usedAtMs.get(row.id) ?? 0,
    });
  }
  return {
    version: rows.version,
    noStoredKeys: !rows.anyKey,
    projects: new Map(rows.projects.map((p) => [p.id, p])),
    keys,
    projectOrigins: new Set(rows.projects.flatMap((p) => p.cors_origins)),
  };
}

/** No projects and no keys: what a process has before its first read (and what unit tests use). */
export const emptyAccessSnapshot: AccessSnapshot = buildAccessSnapshot(
  { version: '0', anyKey: false, projects: [], keys: [] },
  null,
);
