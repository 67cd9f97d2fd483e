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

/** One payload: some of a transaction's keys for a project, and how many it stored in all. */
export interface CommitNotification extends ProjectCommit {
  readonly total: number;
}

export const keyLength = 36;
/** A payload must stay under 8000 bytes: 200 keys is 7200 bytes plus the numbers. */
const keysPerPayload = 200;

/** `<project>:<txid>:<total>:<keys>` per payload, at most keysPerPayload keys each. */
export function commitPayloads(commit: ProjectCommit): string[] {
  const payloads: string[] = [];
  const head = `${commit.projectId}:${commit.txid}:${commit.keys.length / keyLength}:`;
  const step = keysPerPayload * keyLength;
  for (let at = 0; at < commit.keys.length; at += step)
    payloads.push(head + commit.keys.slice(at, at + step));
  return payloads;
}

/** The payload's notification; null for a payload no pulse process of this version sent. */
export function parseCommitPayload(payload: string): CommitNotification | null {
  const numbers: number[] = [];
  let at = 0;
  for (let field = 0; field < 3; field++) {
    const end = payload.indexOf(':', at);
    if (end <= at || end - at > 16) return null;
    const value = Number(payload.slice(at, end));
    if (!Number.isSafeInteger(value) || value < 1) return null;
    numbers.push(value);
    at = end + 1;
  }
  const [projectId, txid, total] = numbers as [number, number, number];
  const keys = payload.slice(at);
  if (keys.length === 0 || keys.length % keyLength !== 0 || keys.length / keyLength > total)
    return null;
  return { projectId, txid, total, keys };
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
