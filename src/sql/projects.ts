// The statements of the admin API and the CLI on projects. A name taken is an expected outcome.
import type pg from 'pg';
import { projectColumns, type ProjectRow } from './access-rows.js';

const uniqueViolation = '23505';

export async function insertProject(
  pool: pg.Pool,
  name: string,
): Promise<ProjectRow | 'name_taken'> {
  try {
    const { rows } = await pool.query<ProjectRow>(
      `INSERT INTO projects (name) VALUES ($1) RETURNING ${projectColumns}`,
      [name],
    );
    return rows[0]!;
  } catch (err) {
    if ((err as { code?: string }).code === uniqueViolation) return 'name_taken';
    throw err;
  }
}

/** Every project, or the one given; by id. */
export async function listProjects(pool: pg.Pool, onlyId: number | null): Promise<ProjectRow[]> {
  const { rows } = await pool.query<ProjectRow>(
    `SELECT ${projectColumns} FROM projects WHERE $1::int IS NULL OR id = $1 ORDER BY id`,
    [onlyId],
  );
  return rows;
}

export async function findProjectByName(pool: pg.Pool, name: string): Promise<ProjectRow | null> {
  const { rows } = await pool.query<ProjectRow>(
    `SELECT ${projectColumns} FROM projects WHERE name = $1`,
    [name],
  );
  return rows[0] ?? null;
}

/** The settings PATCH /admin/projects/{id} may change; undefined leaves one as it is. */
export interface ProjectSettingsChange {
  readonly ingest_events_per_second?: number | null;
  readonly metrics_requests_per_minute?: number | null;
  readonly cors_origins?: readonly string[];
}

const updateSql = `
UPDATE projects SET
  ingest_events_per_second = CASE WHEN $2 THEN $3::int ELSE ingest_events_per_second END,
  metrics_requests_per_minute = CASE WHEN $4 THEN $5::int ELSE metrics_requests_per_minute END,
  cors_origins = coalesce($6::text[], cors_origins)
WHERE id = $1
RETURNING ${projectColumns}`;

export async function updateProject(
  pool: pg.Pool,
  id: number,
  change: ProjectSettingsChange,
): Promise<ProjectRow | null> {
  const { rows } = await pool.query<ProjectRow>(updateSql, [
    id,
    change.ingest_events_per_second !== undefined,
    change.ingest_events_per_second ?? null,
    change.metrics_requests_per_minute !== undefined,
    change.metrics_requests_per_minute ?? null,
    change.cors_origins ?? null,
  ]);
  return rows[0] ?? null;
}
