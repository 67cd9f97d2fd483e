// How every process learns of every commit: after a writer commits, its process sends what each
// transaction stored on one channel (NOTIFY), and each process LISTENs on it. A notification is sent
// after the commit, so whoever reads the rows it names finds them. It names the transaction too: a
// reader that has seen it does not read its rows again when it looks for rows whose notification
// never arrived (read-committed-events.ts).
import type pg from 'pg';

export const commitChannel = 'pulse_commits';

/** The events one transaction stored for one project: each idem_key's 36 characters, one after
 *  another (the writer hands them over as one string: one copy across threads, not one per key). */
export interface ProjectCommit {
  readonly projectId: number;
  /** The transaction's id (the events' txid). */
  readonly txid: number;
  readonly keys: string;
}

/** Some of a transaction's keys for a project, and how many it stored in all. */
export interface CommitNotification extends ProjectCommit {
  readonly total: number;
}

export const keyLength = 36;
/** A payload must stay under 8000 bytes: 190 keys is 6840 bytes, and 20 transactions' numbers
 *  at most 640 more. */
const keysPerPayload = 190;
const transactionsPerPayload = 20;

/** `<project>:<txid>.<total>.<count>[,…]:<keys>`: the transactions of one project committed
 *  together share payloads, each naming its keys in order; one larger than a payload's room goes
 *  on in the next. Fewer, fuller payloads than one per transaction: single events commit a few
 *  dozen at a time. */
export function commitPayloads(commits: readonly ProjectCommit[]): string[] {
  const payloads: string[] = [];
  const byProject = new Map<number, ProjectCommit[]>();
  for (const commit of commits) {
    const ofProject = byProject.get(commit.projectId);
    if (ofProject) ofProject.push(commit);
    else byProject.set(commit.projectId, [commit]);
  }
  for (const [projectId, ofProject] of byProject) {
    let segments: string[] = [];
    let keys = '';
    const flush = () => {
      if (keys.length > 0) payloads.push(`${projectId}:${segments.join(',')}:${keys}`);
      segments = [];
      keys = '';
    };
    for (const { txid, keys: all } of ofProject) {
      const total = all.length / keyLength;
      for (let at = 0; at < all.length;) {
        const room = keysPerPayload - keys.length / keyLength;
        const count = Math.min(room, (all.length - at) / keyLength);
        segments.push(`${txid}.${total}.${count}`);
        keys += all.slice(at, at + count * keyLength);
        at += count * keyLength;
        if (count === room || segments.length === transactionsPerPayload) flush();
      }
    }
    flush();
  }
  return payloads;
}

/** The payload's notifications, one per transaction named; null for a payload no pulse process
 *  of this version sent. */
export function parseCommitPayload(payload: string): CommitNotification[] | null {
  const first = payload.indexOf(':');
  const second = payload.indexOf(':', first + 1);
  if (first < 1 || first > 10 || second === -1) return null;
  const projectId = positive(payload.slice(0, first));
  const segments = payload.slice(first + 1, second).split(',', transactionsPerPayload + 1);
  if (projectId === null || segments.length > transactionsPerPayload) return null;
  const notifications: CommitNotification[] = [];
  let at = second + 1;
  for (const segment of segments) {
    const [txid, total, count, extra] = segment.split('.', 4).map(positive);
    if (!txid || !total || !count || extra !== undefined || count > total) return null;
    const end = at + count * keyLength;
    if (end > payload.length) return null;
    notifications.push({ projectId, txid, total, keys: payload.slice(at, end) });
    at = end;
  }
  return at === payload.length ? notifications : null;
}

/** A decimal of at most 16 digits, above 0; null for anything else. */
function positive(text: string): number | null {
  if (text.length === 0 || text.length > 16) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 && String(value) === text ? value : null;
}

/** The first `max` keys of a ProjectCommit's string, one string each. */
export function splitKeys(keys: string, max = Infinity): string[] {
  const list: string[] = [];
  const end = Math.min(keys.length, max * keyLength);
  for (let at = 0; at < end; at += keyLength) list.push(keys.slice(at, at + keyLength));
  return list;
}

const notifySql = `SELECT pg_notify('${commitChannel}', payload) FROM unnest($1::text[]) AS payload`;

/** One statement for any number of payloads: a transaction's notifications arrive together. */
export async function notifyCommits(client: pg.Client, payloads: readonly string[]): Promise<void> {
  await client.query(notifySql, [payloads]);
}
