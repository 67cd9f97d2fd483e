// The metrics bench's synthetic dataset, generated inside Postgres: one INSERT … SELECT over
// generate_series per chunk (no rows cross the wire, which beats COPY from Node here, and needs no
// pg-copy-streams). The events table's secondary indexes are dropped for the load and rebuilt from
// their own pg_indexes definitions afterwards: building a 10M-entry random-uuid btree once is far
// cheaper than maintaining it row by row, and the end state is the migration's DDL exactly.
import pg from 'pg';
import { defaultProjectId } from '../../src/sql/insert-events.js';

export const secondsPerDay = 86_400;

export interface DatasetShape {
  readonly events: number;
  readonly days: number;
  /** Epoch seconds of the UTC midnight the data ends at (exclusive). */
  readonly endSeconds: number;
  readonly eventNames: number;
  readonly channels: readonly string[];
  /** Share of events with no channel. */
  readonly noChannelShare: number;
  readonly users: number;
}

/** Other projects, each holding a smaller dataset of the same shape beside the main one. */
export interface Neighbours {
  readonly projects: number;
  readonly eventsEach: number;
}

export interface LoadedDataset {
  readonly shape: DatasetShape;
  readonly neighbours: Neighbours;
  readonly startSeconds: number;
  readonly loadSeconds: number;
  /** The part of loadSeconds spent rebuilding indexes and in VACUUM ANALYZE. */
  readonly indexAndVacuumSeconds: number;
  readonly tableBytes: number;
  readonly totalBytes: number;
}

export const eventNameOf = (index: number) => `event_${String(index).padStart(2, '0')}`;

/** Rows per INSERT statement: big enough that per-statement cost vanishes, small enough to
 *  report progress every few seconds. */
const chunkRows = 1_000_000;

// Rows come in occurred_at order (an evenly spaced slot per row, jittered inside it), as a live
// ingest would append them, in whole seconds as the API accepts them: the heap, the occurred_at btree and the txid BRIN all correlate with
// time, as they do in production. Names, users and channels are uniform and independent.
// idem_key is the writers' key for event_id (md5 of 'i' || event_id), so the rows are exactly what
// ingesting them would have stored.
const insertChunkSql = `
INSERT INTO events (project_id, idem_key, event_id, event_name, user_id, occurred_at, channel)
SELECT $9::int,
       md5('iseed-' || i)::uuid,
       'seed-' || i,
       'event_' || lpad(floor(random() * $3)::int::text, 2, '0'),
       'u' || floor(random() * $4)::int,
       to_timestamp(floor($5::float8 + (i + random()) * $6::float8)),
       CASE WHEN random() < $7 THEN NULL
            ELSE ($8::text[])[1 + floor(random() * cardinality($8::text[]))::int] END
FROM generate_series($1::bigint, $2::bigint - 1) AS i`;

export async function loadDataset(
  dsn: string,
  shape: DatasetShape,
  neighbours: Neighbours,
  progress: (line: string) => void,
): Promise<LoadedDataset> {
  const client = new pg.Client({ connectionString: dsn, application_name: 'pulse-bench-load' });
  await client.connect();
  try {
    const startSeconds = shape.endSeconds - shape.days * secondsPerDay;
    const started = performance.now();
    // Nothing waits on these commits; the bench machine's disk is not what is measured.
    await client.query("SET synchronous_commit = 'off'");
    await client.query("SET maintenance_work_mem = '1GB'");
    const { rows: indexes } = await client.query<{ name: string; definition: string }>(
      `SELECT indexname AS name, indexdef AS definition FROM pg_indexes
       WHERE schemaname = 'public' AND tablename = 'events'`,
    );
    for (const index of indexes) await client.query(`DROP INDEX ${quoteIdentifier(index.name)}`);
    // Deterministic: the same options give the same rows in every run.
    await client.query('SELECT setseed(0.4242)');
    const load = async (projectId: number, events: number) => {
      for (let lo = 0; lo < events; lo += chunkRows) {
        const hi = Math.min(events, lo + chunkRows);
        await client.query(insertChunkSql, [
          lo,
          hi,
          shape.eventNames,
          shape.users,
          startSeconds,
          (shape.days * secondsPerDay) / events,
          shape.noChannelShare,
          shape.channels,
          projectId,
        ]);
        progress(
          `project ${projectId}: loaded ${hi.toLocaleString('en-US')} / ${events.toLocaleString('en-US')} events (${((performance.now() - started) / 1000).toFixed(0)} s)`,
        );
      }
    };
    // The default project: the one a server without keys answers for.
    await load(defaultProjectId, shape.events);
    // Neighbours share event_ids, users and names with the main project: only project_id tells
    // their rows apart, as it does for tenants that send alike.
    if (neighbours.projects > 0) {
      const { rows: created } = await client.query<{ id: number }>(
        `INSERT INTO projects (name) SELECT 'bench-neighbour-' || n FROM generate_series(1, $1::int) AS n
         RETURNING id`,
        [neighbours.projects],
      );
      for (const { id } of created) await load(id, neighbours.eventsEach);
    }
    const indexesStarted = performance.now();
    for (const index of indexes) {
      await client.query(index.definition);
      progress(
        `rebuilt index ${index.name} (${((performance.now() - indexesStarted) / 1000).toFixed(0)} s)`,
      );
    }
    await client.query('VACUUM (ANALYZE) events');
    const finished = performance.now();
    progress(`VACUUM ANALYZE done (${((finished - indexesStarted) / 1000).toFixed(0)} s)`);
    const { rows: sizes } = await client.query<{ table_bytes: string; total_bytes: string }>(
      `SELECT pg_table_size('events') AS table_bytes, pg_total_relation_size('events') AS total_bytes`,
    );
    return {
      shape,
      neighbours,
      startSeconds,
      loadSeconds: (finished - started) / 1000,
      indexAndVacuumSeconds: (finished - indexesStarted) / 1000,
      tableBytes: Number(sizes[0]!.table_bytes),
      totalBytes: Number(sizes[0]!.total_bytes),
    };
  } finally {
    await client.end();
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
