// The events stream's reader against a real Postgres: it reads the rows a notification names, and
// catches up on rows whose notification never arrived; it sends each row once, however often it
// is notified or catches up; it builds no more lines than the caps can pass and counts the rest
// exactly (delivered + dropped = committed, per topic).
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { WebSocket } from 'uWebSockets.js';
import { EventFanout, type EventsMembership } from '../../src/live/event-fanout.js';
import {
  commitPayloads,
  parseCommitPayload,
  type CommitNotification,
} from '../../src/sql/commit-notifications.js';
import type { QueuedPool } from '../../src/sql/queued-pool.js';
import {
  createTestDatabase,
  queuedPool,
  servicePool,
  type TestDatabase,
} from '../helpers/database.js';
import { sleep, waitUntil } from '../helpers/wait-until.js';

let db: TestDatabase;
let pool: pg.Pool;
let project = 100;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = servicePool(db.dsn, 'pulse-live-event-reads');
});
afterAll(async () => {
  await pool?.end();
  await db?.close();
});
// Each test on a project of its own: the reader of one never sees another's rows.
beforeEach(() => void project++);

/** One committed transaction of `count` events named `name` (ids `${prefix}${n}`): what its
 *  notification would say. */
async function commit(
  prefix: string,
  count: number,
  name = 'view',
  projectId = project,
): Promise<CommitNotification> {
  const rows = await db.query<{ key: string; txid: string }>(
    `INSERT INTO events (project_id, idem_key, event_id, event_name, user_id, occurred_at)
     SELECT $1, md5($2 || n)::uuid, $2 || n, $3, 'u' || n, now()
     FROM generate_series(0, $4 - 1) AS n
     RETURNING idem_key::text AS key, txid`,
    [projectId, prefix, name, count],
  );
  return {
    projectId,
    txid: Number(rows[0]!.txid),
    total: rows.length,
    keys: rows.map((r) => r.key).join(''),
  };
}

interface Harness {
  readonly fanout: EventFanout;
  /** Event ids published, per topic name. */
  readonly published: Map<string, string[]>;
  /** Lines the reader had Postgres build. */
  readonly linesRead: () => number;
  subscribe(
    eventName?: string | null,
    projectId?: number,
  ): Promise<{ membership: EventsMembership; sent: string[] }>;
  /** Statements that read unseen rows' lines. */
  readonly unseenReads: () => number;
}

/** catchUpMs: an hour unless a test needs the timer; the others catch up when told to. */
function harness(cap: number, catchUpMs = 3_600_000): Harness {
  let linesRead = 0;
  let unseenReads = 0;
  const queued = queuedPool(pool);
  // The real pool, the lines it returns counted on their way.
  const countingPool = {
    query: async (config: pg.QueryConfig) => {
      const result = await queued.query(config);
      linesRead += result.rows.filter((r) => typeof r.line === 'string').length;
      if (config.name === undefined && config.text.includes('LIMIT $7')) unseenReads++;
      return result;
    },
  } as unknown as QueuedPool;
  const published = new Map<string, string[]>();
  const fanout = new EventFanout({
    pool: countingPool,
    publish: (topic, message) => {
      const id = (JSON.parse(message) as { event: { event_id: string } }).event.event_id;
      published.set(topic, [...(published.get(topic) ?? []), id]);
    },
    eventsPerSecond: cap,
    catchUpMs,
    log: { warn: () => undefined },
  });
  return {
    fanout,
    published,
    linesRead: () => linesRead,
    unseenReads: () => unseenReads,
    subscribe: async (eventName = null, projectId = project) => {
      const sent: string[] = [];
      const ws = {
        subscribe: () => true,
        send: (message: string) => void sent.push(message),
      } as unknown as WebSocket<unknown>;
      const membership = fanout.join(ws, projectId, eventName, null);
      await waitUntil(
        'subscribed',
        () => sent.includes('{"type":"subscribed","stream":"events"}'),
        { timeoutMs: 10_000 },
      );
      return { membership, sent };
    },
  };
}

const topicName = (eventName: string | null) =>
  `events:${project}:${JSON.stringify([eventName, null])}`;

it('sends what commits after `subscribed` once, notified or not, however often notified', async () => {
  const h = harness(1000);
  await commit('before-', 3);
  await h.subscribe();
  const quiet = await commit('quiet-', 2); // never notified
  const told = await commit('told-', 2);
  h.fanout.committed(told);
  const sent = () => h.published.get(topicName(null)) ?? [];
  await waitUntil('the notified commit read', () => sent().length === 2, { timeoutMs: 10_000 });
  expect(sent().sort()).toEqual(['told-0', 'told-1']);
  h.fanout.committed(told);
  h.fanout.catchUp();
  await waitUntil('the other commit caught up on', () => sent().length === 4, {
    timeoutMs: 10_000,
  });
  expect(sent().slice(2).sort()).toEqual(['quiet-0', 'quiet-1']);
  // Late and repeated notifications, and another catch-up, send nothing again.
  h.fanout.committed(quiet);
  h.fanout.committed(told);
  h.fanout.catchUp();
  h.fanout.committed(await commit('after-', 1));
  await waitUntil('the last commit read', () => sent().length >= 5, { timeoutMs: 10_000 });
  await sleep(300);
  expect(sent()).toHaveLength(5);
  expect(sent()[4]).toBe('after-0');
  h.fanout.close();
});

it('catches up on its own, every catchUpMs', async () => {
  const h = harness(1000, 200);
  await h.subscribe();
  await commit('quiet-', 3); // never notified
  const sent = () => h.published.get(topicName(null)) ?? [];
  await waitUntil('the rows caught up on', () => sent().length === 3, { timeoutMs: 10_000 });
  await sleep(500); // two more catch-ups
  expect(sent().sort()).toEqual(['quiet-0', 'quiet-1', 'quiet-2']);
  h.fanout.close();
});

it('catches up on every project in one scan, reading only those with rows missed', async () => {
  const h = harness(1000);
  const other = project + 1000;
  await h.subscribe();
  await h.subscribe(null, other);
  await commit('here-', 2); // never notified
  h.fanout.committed(await commit('there-', 2, 'view', other));
  const otherTopic = `events:${other}:${JSON.stringify([null, null])}`;
  await waitUntil('the notified rows', () => h.published.get(otherTopic)?.length === 2, {
    timeoutMs: 10_000,
  });
  h.fanout.catchUp();
  await waitUntil('the missed rows', () => h.published.get(topicName(null))?.length === 2, {
    timeoutMs: 10_000,
  });
  await sleep(300);
  expect(h.published.get(topicName(null))!.sort()).toEqual(['here-0', 'here-1']);
  expect(h.published.get(otherTopic)!.sort()).toEqual(['there-0', 'there-1']);
  expect(h.unseenReads()).toBe(1);
  h.fanout.close();
});

it("reads a large transaction's several notifications whole, and once", async () => {
  const h = harness(1000);
  await h.subscribe();
  const big = await commit('big-', 450);
  const notifications = commitPayloads([big]).flatMap((payload) => parseCommitPayload(payload)!);
  expect(notifications.map((n) => [n.txid, n.total, n.keys.length / 36])).toEqual([
    [big.txid, 450, 190],
    [big.txid, 450, 190],
    [big.txid, 450, 70],
  ]);
  const sent = () => h.published.get(topicName(null)) ?? [];
  h.fanout.committed(notifications[0]!);
  await waitUntil('the first notification read', () => sent().length === 190, {
    timeoutMs: 10_000,
  });
  // A catch-up between two notifications of one transaction leaves the rest to them.
  h.fanout.catchUp();
  await sleep(500);
  expect(sent()).toHaveLength(190);
  for (const notification of notifications) h.fanout.committed(notification);
  await waitUntil('every row read', () => sent().length === 450, { timeoutMs: 10_000 });
  h.fanout.catchUp();
  await sleep(500);
  expect(new Set(sent()).size).toBe(450);
  expect(sent()).toHaveLength(450);
  h.fanout.close();
});

it('counts as dropped the keys of notifications cut off with the connection', async () => {
  const h = harness(1000);
  const { membership } = await h.subscribe();
  const big = await commit('cut-', 450);
  const [first] = commitPayloads([big]).flatMap((payload) => parseCommitPayload(payload)!);
  h.fanout.committed(first!);
  await waitUntil(
    'the first notification read',
    () => h.published.get(topicName(null))?.length === 190,
    {
      timeoutMs: 10_000,
    },
  );
  h.fanout.listening(); // the other two were lost with the connection
  await sleep(500);
  expect(h.published.get(topicName(null))).toHaveLength(190);
  expect(membership.topic!.droppedTotal).toBe(260);
  h.fanout.close();
});

it('builds no more lines than the cap lets through, and counts every other row', async () => {
  const cap = 100;
  const commits = 50;
  const perCommit = 20;
  const h = harness(cap);
  const { membership } = await h.subscribe();
  const startedAt = performance.now();
  for (let c = 0; c < commits; c++) {
    h.fanout.committed(await commit(`c${c}-`, perCommit));
  }
  const delivered = () => h.published.get(topicName(null))?.length ?? 0;
  await waitUntil(
    'every committed row delivered or dropped',
    () => delivered() + membership.topic!.droppedTotal === commits * perCommit,
    { timeoutMs: 10_000 },
  );
  const seconds = (performance.now() - startedAt) / 1000;
  h.fanout.close();
  // One second's burst, then the rate while the commits came.
  const passable = cap + Math.ceil(cap * seconds);
  expect(delivered()).toBeGreaterThanOrEqual(cap);
  expect(delivered()).toBeLessThanOrEqual(passable);
  expect(h.linesRead()).toBeLessThanOrEqual(passable);
  expect(membership.topic!.droppedTotal).toBe(commits * perCommit - delivered());
});

it('counts, per filtered topic, the rows a catch-up left unread', async () => {
  const h = harness(5);
  const buy = await h.subscribe('buy');
  const view = await h.subscribe('view');
  await commit('b', 40, 'buy');
  await commit('v', 7, 'view');
  await commit('s', 30, 'search'); // no topic wants these: neither read nor counted
  h.fanout.catchUp(); // none of them was notified
  const accounted = (m: EventsMembership, name: string) =>
    (h.published.get(topicName(name))?.length ?? 0) + m.topic!.droppedTotal;
  await waitUntil(
    'every buy and view delivered or dropped',
    () => accounted(buy.membership, 'buy') === 40 && accounted(view.membership, 'view') === 7,
    { timeoutMs: 10_000 },
  );
  h.fanout.close();
  expect(h.published.get(topicName('buy'))).toHaveLength(5);
  expect(buy.membership.topic!.droppedTotal).toBe(35);
  expect(view.membership.topic!.droppedTotal).toBe(
    7 - (h.published.get(topicName('view'))?.length ?? 0),
  );
  // The catch-up stopped at the caps' 10 rows (+1), all of them buys: the views were counted.
  expect(h.linesRead()).toBe(11);
});
