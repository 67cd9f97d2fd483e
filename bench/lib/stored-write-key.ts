// A project and a stored write key in a bench database, made as the admin API makes them: a server
// started on it then checks a stored key on every request, as it does for a browser or an app.
import type { Logger } from 'pino';
import { createKey } from '../../src/access/manage-access.js';
import { createPool } from '../../src/sql/create-pool.js';
import { insertProject } from '../../src/sql/projects.js';

/** Returns the key's secret. */
export async function storeWriteKey(dsn: string, log: Logger): Promise<string> {
  const pool = createPool(
    {
      connectionString: dsn,
      applicationName: 'pulse-bench-keys',
      max: 1,
      connectTimeoutMs: 5000,
      statementTimeoutMs: 30_000,
      queryTimeoutMs: 60_000,
    },
    log,
  );
  try {
    const project = await insertProject(pool, 'bench');
    if (project === 'name_taken') throw new Error('a fresh bench database has a project already');
    return (await createKey(pool, project.id, 'write', 'bench')).key;
  } finally {
    await pool.end();
  }
}
