// Applies migrations/NNNN_*.sql in order, each in its own transaction, under one advisory lock so
// N processes starting together apply each file exactly once.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { projectRoot } from '../project-root.js';
import { withClient } from './create-pool.js';

export const migrationsDir = join(projectRoot, 'migrations');

/** Arbitrary constant shared by every process of this service ("pulse" in ASCII). */
const migrationLockId = 0x70756c7365;

export async function listMigrations(dir = migrationsDir): Promise<string[]> {
  return (await readdir(dir)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).sort();
}

/** Returns the names applied by this call. */
export async function migrate(pool: pg.Pool, dir = migrationsDir): Promise<string[]> {
  const files = await listMigrations(dir);
  const applied: string[] = [];
  await withClient(pool, async (client) => {
    await client.query('SELECT pg_advisory_lock($1)', [migrationLockId]);
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const done = new Set(
        (await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map(
          (r) => r.name,
        ),
      );
      for (const file of files) {
        if (done.has(file)) continue;
        const sql = await readFile(join(dir, file), 'utf8');
        await client.query('BEGIN');
        try {
          await client.query(sql);
          await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw new Error(`migration ${file} failed: ${(err as Error).message}`);
        }
        applied.push(file);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [migrationLockId]).catch(() => undefined);
    }
  });
  return applied;
}

/** True when every expected migration is recorded as applied. */
export async function migrationsApplied(pool: pg.Pool, files: readonly string[]): Promise<boolean> {
  const { rows } = await pool.query<{ name: string }>('SELECT name FROM schema_migrations');
  const done = new Set(rows.map((r) => r.name));
  return files.every((f) => done.has(f));
}
