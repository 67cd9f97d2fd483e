// What a COMMIT promises on this database server. Writer sessions pin synchronous_commit
// themselves (create-pool.ts); fsync is server-wide, so all start-up can do is say so.
import type pg from 'pg';

export interface DurabilitySettings {
  readonly fsync: string;
}

export async function readDurabilitySettings(pool: pg.Pool): Promise<DurabilitySettings> {
  const { rows } = await pool.query<{ fsync: string }>('SHOW fsync');
  return { fsync: rows[0]?.fsync ?? 'unknown' };
}

/** Start-up log lines for settings under which a durable 202 can still be lost. */
export function durabilityWarnings(settings: DurabilitySettings): string[] {
  return settings.fsync === 'on'
    ? []
    : [
        `the database server runs with fsync = ${settings.fsync}: events answered 202 after COMMIT ` +
          'can be lost if its machine crashes; set fsync = on',
      ];
}
