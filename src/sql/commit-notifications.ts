// How every process learns of every commit: after a writer commits, its process sends the stored
// keys on one channel (NOTIFY), and each process LISTENs on it. A notification is sent after the
// commit, so whoever reads the rows it names finds them.
import type pg from 'pg';

export const commitChannel = 'pulse_commits';

/** The events one batch stored for one project: each idem_key's 36 characters, one after another
 *  (the writer hands them over as one string: one copy across threads, not one per key). */
export interface ProjectKeys {
  readonly projectId: number;
  readonly keys: string;
}

export const keyLength = 36;
/** A payload must stay under 8000 bytes: 200 keys is 7200 bytes plus the project. */
const keysPerPayload = 200;

/** `<project>:<keys>` per payload, at most keysPerPayload keys each. */
export function commitPayloads(committed: readonly ProjectKeys[]): string[] {
  const payloads: string[] = [];
  const step = keysPerPayload * keyLength;
  for (const { projectId, keys } of committed)
    for (let at = 0; at < keys.length; at += step)
      payloads.push(`${projectId}:${keys.slice(at, at + step)}`);
  return payloads;
}

/** The payload's project and keys; null for a payload no pulse process sent. */
export function parseCommitPayload(payload: string): ProjectKeys | null {
  const colon = payload.indexOf(':');
  const projectId = Number(payload.slice(0, colon));
  const keys = payload.slice(colon + 1);
  if (colon < 1 || !Number.isSafeInteger(projectId) || keys.length % keyLength !== 0) return null;
  return { projectId, keys };
}

/** The first `max` keys of a ProjectKeys' string, one string each. */
export function splitKeys(keys: string, max = Infinity): string[] {
  const list: string[] = [];
  const end = Math.min(keys.length, max * keyLength);
  for (let at = 0; at < end; at += keyLength) list.push(keys.slice(at, at + keyLength));
  return list;
}

const notifySql = `SELECT pg_notify('${commitChannel}', payload) FROM unnest($1::text[]) AS payload`;

/** One statement for any number of payloads. */
export async function notifyCommits(client: pg.Client, payloads: readonly string[]): Promise<void> {
  await client.query(notifySql, [payloads]);
}
