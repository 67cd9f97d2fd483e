// Projects isolate their data. Three projects, each with a write and a read key made through the
// admin API over HTTP, receive random events (a seeded PRNG) whose event_ids, users, names,
// channels and (name, user, timestamp) triples overlap across projects, in singles and bulks sent
// concurrently so batches mix projects. Every read key's GET /metrics (windows × filters ×
// group_by) equals an oracle over its own project's rows, and its export is exactly what its
// project's writer sent: no read key sees another project's rows, no writer claims another's keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { postJson, type TestEvent } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  metricsOracle,
  metricsSearchParams,
  type MetricsNumbers,
  type OracleQuery,
} from '../helpers/metrics-oracle.js';
import { waitUntil } from '../helpers/wait-until.js';

const rootKey = 'isolation-root-key-0123456789';
const secondsPerDay = 86_400;
/** 2023-08-30 UTC: far enough in the past for any clock. */
const spanStart = 19_600 * secondsPerDay;
const spanDays = 6;
const spanEnd = spanStart + spanDays * secondsPerDay - 1;

const eventNames = ['view', 'click', 'buy'] as const;
const channels = ['web', 'ios'] as const;
const users = ['u0', 'u1', 'u2', 'u3', 'u4', 'user 🦊'] as const;

/** mulberry32: a small seeded PRNG, so a failure replays exactly. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
const random = seededRandom(0x15);
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
const randomSecond = () => spanStart + Math.floor(random() * spanDays * secondsPerDay);

/** The same ids and triples are offered to every project; what each project sends under them
 *  differs (name, user, timestamp, channel, and campaign_id = the project's name). */
const sharedIds = Array.from({ length: 24 }, (_, i) => `e${i}`);
const sharedTriples = Array.from({ length: 24 }, () => ({
  event_name: pick(eventNames),
  user_id: pick(users),
  timestamp: randomSecond(),
}));

interface Project {
  readonly name: string;
  /** projects.id, as the admin API returns it. */
  readonly id: string;
  readonly writeKey: string;
  readonly readKey: string;
  /** Each idempotency key's one event in this project: re-sends carry the same content. */
  readonly catalogue: readonly TestEvent[];
  /** The catalogue entries sent at least once: what the project must hold. */
  readonly sent: Set<TestEvent>;
  inserted: number;
}

function catalogueFor(projectName: string): TestEvent[] {
  const withId = sharedIds.map((event_id): TestEvent => {
    const channel = pick([...channels, undefined]);
    return {
      event_id,
      event_name: pick(eventNames),
      user_id: pick(users),
      timestamp: randomSecond(),
      campaign_id: projectName,
      ...(channel === undefined ? {} : { channel }),
      ...(random() < 0.2 ? { tags: [pick(['a', 'b'])] } : {}),
    };
  });
  const byTriple = sharedTriples.map((triple): TestEvent => {
    const channel = pick([...channels, undefined]);
    return { ...triple, campaign_id: projectName, ...(channel === undefined ? {} : { channel }) };
  });
  return [...withId, ...byTriple];
}

let db: TestDatabase;
let server: TestServer;
const projects: Project[] = [];

async function adminPost(path: string, body: object): Promise<Record<string, unknown>> {
  const res = await postJson(`${server.url}${path}`, body, { 'x-api-key': rootKey });
  if (res.status !== 201)
    throw new Error(`POST ${path} ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function createProject(name: string): Promise<Project> {
  const project = await adminPost('/admin/projects', { name });
  expect({ ...project, id: typeof project.id, created_at: typeof project.created_at }).toEqual({
    id: 'string',
    name,
    created_at: 'number',
  });
  const id = project.id as string;
  const keys: Record<string, string> = {};
  for (const scope of ['write', 'read']) {
    const key = await adminPost(`/admin/projects/${id}/keys`, { scope });
    expect({ ...key, id: typeof key.id, key: typeof key.key }).toEqual({
      id: 'string',
      key: 'string',
      scope,
      project_id: id,
    });
    keys[scope] = key.key as string;
  }
  return {
    name,
    id,
    writeKey: keys.write!,
    readKey: keys.read!,
    catalogue: catalogueFor(name),
    sent: new Set(),
    inserted: 0,
  };
}

/** Every key is in force on this server within the access refresh; probe without storing. */
async function waitForKeys(project: Project): Promise<void> {
  await waitUntil(
    `${project.name}'s keys to be accepted`,
    async () => {
      const write = await postJson(`${server.url}/events/bulk`, { events: [] }, writeAuth(project));
      const read = await fetch(`${server.url}/metrics?from=${spanStart}&to=${spanStart}`, {
        headers: readAuth(project),
      });
      await read.arrayBuffer();
      return write.status === 400 && read.status === 200;
    },
    { timeoutMs: 10_000, intervalMs: 100 },
  );
}

const writeAuth = (p: Project) => ({ 'x-api-key': p.writeKey });
const readAuth = (p: Project) => ({ authorization: `Bearer ${p.readKey}` });

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, {
    API_KEYS: rootKey,
    METRICS_CACHE_TTL_MS: '0',
    RATE_LIMIT_METRICS_PER_MIN: '0',
    RATE_LIMIT_EXPORTS_PER_MIN: '0',
    // The key probes above may meet a key not loaded yet; they must not lock the test out.
    AUTH_FAILURES_PER_MIN: '0',
    // Only the refreshes the test asks for: rollup and raw tail both in play, reproducibly.
    ROLLUP_REFRESH_MS: '3600000',
  });
  for (const name of ['alpha', 'beta', 'gamma']) projects.push(await createProject(name));
  for (const project of projects) await waitForKeys(project);
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

interface Send {
  readonly project: Project;
  readonly events: TestEvent[];
  readonly single: boolean;
}

function randomSends(count: number): Send[] {
  return Array.from({ length: count }, () => {
    const project = pick(projects);
    const single = random() < 0.3;
    const size = single ? 1 : 1 + Math.floor(random() * 15);
    const events = Array.from({ length: size }, () => pick(project.catalogue));
    return { project, events, single };
  });
}

async function deliver({ project, events, single }: Send): Promise<void> {
  const url = `${server.url}/events${single ? '' : '/bulk'}`;
  const res = await postJson(url, single ? events[0] : { events }, writeAuth(project));
  if (res.status !== 202) throw new Error(`${url} ${res.status}: ${JSON.stringify(res.body)}`);
  for (const event of events) project.sent.add(event);
  project.inserted += res.body.inserted as number;
}

/** A few requests in flight at once: the batcher then groups several projects into one batch. */
async function deliverAll(sends: Send[], inFlight = 6): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < sends.length) await deliver(sends[next++]!);
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}

type Query = OracleQuery;

async function fetchMetrics(project: Project, q: Query): Promise<MetricsNumbers> {
  const res = await fetch(`${server.url}/metrics?${metricsSearchParams(q).toString()}`, {
    headers: readAuth(project),
  });
  const body = (await res.json()) as MetricsNumbers;
  if (res.status !== 200) throw new Error(`GET /metrics ${res.status}: ${JSON.stringify(body)}`);
  return body.buckets === undefined
    ? { totals: body.totals }
    : { totals: body.totals, buckets: body.buckets };
}

/** The truth for one project, straight from the raw table. */
const oracle = (project: Project, q: Query) => metricsOracle(db, q, Number(project.id));

const day = (d: number) => spanStart + d * secondsPerDay;
const windows = [
  { from: spanStart - secondsPerDay, to: spanEnd + secondsPerDay },
  { from: day(2), to: day(3) - 1 },
  { from: day(1) + 10 * 3600, to: day(4) + 14 * 3600 },
  { from: sharedTriples[0]!.timestamp, to: sharedTriples[0]!.timestamp },
];

function everyQuery(): Query[] {
  const queries: Query[] = [];
  for (const w of windows)
    for (const eventName of [null, ...eventNames, 'never-sent'])
      for (const channel of [null, ...channels, 'never-sent'])
        for (const groupByDay of [false, true])
          queries.push({ ...w, eventName, channel, groupByDay });
  return queries;
}

/** JSON with object keys sorted: rows compare whatever order the fields come in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

async function exportOf(project: Project): Promise<Record<string, unknown>[]> {
  const res = await fetch(`${server.url}/events/export?from=${spanStart}&to=${spanEnd}`, {
    headers: readAuth(project),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /events/export ${res.status}: ${text}`);
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The project's rows as the export would print them, read independently of src/sql. */
async function storedRows(project: Project): Promise<string[]> {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT event_id, event_name, user_id, extract(epoch FROM occurred_at)::int AS timestamp,
            channel, campaign_id, tags, metadata,
            (extract(epoch FROM received_at) * 1000)::int8::float8 AS received_at
     FROM events WHERE project_id = $1`,
    [Number(project.id)],
  );
  const present = (row: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(row).filter(([, v]) => v !== null));
  return rows.map((row) => canonicalJson(present(row))).sort();
}

/** Events as sent compare with exported ones once the export's received_at is left out. */
const withoutReceivedAt = (rows: readonly object[]) =>
  rows
    .map((row) =>
      canonicalJson(Object.fromEntries(Object.entries(row).filter(([k]) => k !== 'received_at'))),
    )
    .sort();

describe('project isolation', () => {
  it("answers every read key's /metrics and export from its own project's rows only", async () => {
    const sends = randomSends(150);
    await deliverAll(sends.slice(0, 90));
    await server.service.refresher.refreshNow();
    // The rest after the refresh: late events land in days the rollup has absorbed.
    await deliverAll(sends.slice(90));

    for (const project of projects) {
      // Each idempotency key inserted exactly once in its own project, whatever the others sent.
      expect({ project: project.name, inserted: project.inserted }).toEqual({
        project: project.name,
        inserted: project.sent.size,
      });
      const exported = await exportOf(project);
      // Exactly what this project's writer sent, nothing of the others' (campaign_id names them).
      expect(withoutReceivedAt(exported)).toEqual(withoutReceivedAt([...project.sent]));
      expect(new Set(exported.map((e) => e.campaign_id))).toEqual(new Set([project.name]));
      expect(exported.map((e) => canonicalJson(e)).sort()).toEqual(await storedRows(project));
      const timestamps = exported.map((e) => e.timestamp as number);
      expect(timestamps).toEqual([...timestamps].sort((a, b) => a - b));
    }

    const queries = everyQuery();
    for (const project of projects) {
      const answers = [];
      const truths = [];
      for (const q of queries) {
        answers.push(await fetchMetrics(project, q));
        truths.push(await oracle(project, q));
      }
      expect({ project: project.name, answers }).toEqual({
        project: project.name,
        answers: truths,
      });
    }
    // Not vacuous: every project holds rows, and they overlap the others' in ids and triples.
    const [counts] = await db.query<{
      projects: number;
      shared_ids: number;
      shared_triples: number;
    }>(
      `SELECT count(DISTINCT project_id)::int AS projects,
              (SELECT count(*)::int FROM (SELECT event_id FROM events WHERE event_id IS NOT NULL
                 GROUP BY event_id HAVING count(DISTINCT project_id) > 1) s) AS shared_ids,
              (SELECT count(*)::int FROM (SELECT 1 FROM events WHERE event_id IS NULL
                 GROUP BY event_name, user_id, occurred_at HAVING count(DISTINCT project_id) > 1) s)
                AS shared_triples
       FROM events`,
    );
    expect(counts!.projects).toBe(3);
    expect(counts!.shared_ids).toBeGreaterThan(5);
    expect(counts!.shared_triples).toBeGreaterThan(5);
  });

  it('answers the whole span exactly per day and per filter after the rollup absorbed everything', async () => {
    await server.service.refresher.refreshNow();
    for (const project of projects) {
      const queries = everyQuery().filter((q) => q.from === windows[0]!.from && q.groupByDay);
      const answers = await Promise.all(queries.map((q) => fetchMetrics(project, q)));
      const truths = await Promise.all(queries.map((q) => oracle(project, q)));
      expect({ project: project.name, answers }).toEqual({
        project: project.name,
        answers: truths,
      });
      expect(answers[0]!.totals.count).toBeGreaterThan(0);
    }
  });

  it("stores a project's events even when another project's writer sent the same keys first", async () => {
    const [victim, attacker] = [projects[0]!, projects[1]!];
    // Outside the span the random events use: this export holds only what this test sends.
    const timestamp = spanEnd + 3600;
    const victimEvents: TestEvent[] = [
      { event_name: 'pre-claimed', user_id: 'victim-1', timestamp, campaign_id: victim.name },
      { event_name: 'pre-claimed', user_id: 'victim-2', timestamp, campaign_id: victim.name },
      { event_id: 'pre-claimed-id', event_name: 'x', user_id: 'v', timestamp },
    ];
    const single: TestEvent = {
      event_name: 'pre-claimed',
      user_id: 'victim-3',
      timestamp,
      campaign_id: victim.name,
    };
    // The attacker sends the victim's keys (triples and the id) with content of its own first.
    const claims = [...victimEvents, single].map((e) => ({ ...e, campaign_id: attacker.name }));
    const claimed = await postJson(
      `${server.url}/events/bulk`,
      { events: claims },
      writeAuth(attacker),
    );
    expect(claimed.body).toEqual({ accepted_count: 4, inserted: 4, duplicates: 0 });

    const bulk = await postJson(
      `${server.url}/events/bulk`,
      { events: victimEvents },
      writeAuth(victim),
    );
    const one = await postJson(`${server.url}/events`, single, writeAuth(victim));
    expect([bulk.status, bulk.body, one.status, one.body]).toEqual([
      202,
      { accepted_count: 3, inserted: 3, duplicates: 0 },
      202,
      { status: 'stored', inserted: 1, duplicate: false },
    ]);
    const exported = await fetch(`${server.url}/events/export?from=${timestamp}&to=${timestamp}`, {
      headers: readAuth(victim),
    });
    const lines = (await exported.text()).split('\n').filter((line) => line !== '');
    expect(withoutReceivedAt(lines.map((l) => JSON.parse(l) as Record<string, unknown>))).toEqual(
      withoutReceivedAt([...victimEvents, single]),
    );
  });
});
