// Bounded load and the set oracle (docs/RELIABILITY.md): every request is classified ok (202),
// fail (4xx: refused before any write) or in doubt (5xx, timeout, network error: it may have been
// committed), and the stored ids are compared with those SETS, never with counts (one lost row and
// one in-doubt row that landed would cancel out in a count).
import { randomUUID } from 'node:crypto';
import { sleep } from './wait-until.js';

export type OutcomeClass = 'ok' | 'fail' | 'inDoubt';

export interface RequestRecord {
  readonly ids: readonly string[];
  readonly outcome: OutcomeClass;
  /** HTTP status, or 0 when no response arrived (network error or client timeout). */
  readonly status: number;
  /** The problem+json `code`, when the body has one. */
  readonly code: string | undefined;
  readonly retryAfter: string | null;
  readonly contentType: string | null;
  readonly body: Record<string, unknown> | undefined;
  readonly error: string | undefined;
  readonly sentAt: number;
  readonly answeredAt: number;
}

export class OutcomeLog {
  readonly records: RequestRecord[] = [];

  /** Every id of every request in that class. */
  ids(outcome: OutcomeClass): Set<string> {
    const ids = new Set<string>();
    for (const r of this.records) if (r.outcome === outcome) for (const id of r.ids) ids.add(id);
    return ids;
  }

  count(predicate: (r: RequestRecord) => boolean): number {
    return this.records.filter(predicate).length;
  }
}

export interface LoadOptions {
  /** The bulk endpoint, e.g. `${server.url}/events/bulk`. */
  readonly url: string;
  readonly log: OutcomeLog;
  /** Concurrent clients, each sending one request at a time. */
  readonly clients: number;
  readonly eventsPerRequest: number;
  /** Bounds: the load stops by itself at whichever comes first. */
  readonly maxRequests: number;
  readonly maxDurationMs: number;
  /** A request unanswered by then is recorded as in doubt. */
  readonly requestTimeoutMs: number;
  /** Pause between one client's requests (also after a network error, so a dead server is not
   *  hammered in a tight loop). */
  readonly pauseMs?: number;
  /** Extra headers, e.g. `connection: close`. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface LoadRun {
  /** Ask every client to stop after its current request. */
  stop(): void;
  /** Resolves when every client has stopped. */
  readonly done: Promise<void>;
  /** Requests sent so far. */
  readonly sent: number;
}

/** Unique events (fresh UUID event_ids), so idempotency never collapses them. */
export function startLoad(options: LoadOptions): LoadRun {
  const endAt = Date.now() + options.maxDurationMs;
  let sent = 0;
  let stopped = false;
  const client = async (clientIndex: number) => {
    while (!stopped && sent < options.maxRequests && Date.now() < endAt) {
      sent++;
      const events = Array.from({ length: options.eventsPerRequest }, (_, i) => ({
        event_id: randomUUID(),
        event_name: 'load',
        user_id: `client-${clientIndex}`,
        timestamp: 1_700_000_000 + i,
      }));
      const record = await sendBulk(options.url, events, options);
      options.log.records.push(record);
      if (options.pauseMs) await sleep(options.pauseMs);
    }
  };
  const done = Promise.all(Array.from({ length: options.clients }, (_, i) => client(i))).then(
    () => undefined,
  );
  return {
    stop: () => {
      stopped = true;
    },
    done,
    get sent() {
      return sent;
    },
  };
}

export async function sendBulk(
  url: string,
  events: readonly { event_id?: string }[],
  options: Pick<LoadOptions, 'requestTimeoutMs' | 'headers'>,
): Promise<RequestRecord> {
  const ids = events.flatMap((e) => (e.event_id === undefined ? [] : [e.event_id]));
  return sendBulkText(url, JSON.stringify({ events }), ids, options);
}

/** A bulk body the caller wrote as text (JSON.stringify cannot write `1e400` or 10⁵-deep
 *  nesting), classified like every other request. */
export async function sendBulkText(
  url: string,
  bodyText: string,
  ids: readonly string[],
  options: Pick<LoadOptions, 'requestTimeoutMs' | 'headers'>,
): Promise<RequestRecord> {
  const sentAt = Date.now();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...options.headers },
      body: bodyText,
      signal: AbortSignal.timeout(options.requestTimeoutMs),
    });
    const text = await res.text();
    let body: Record<string, unknown> | undefined;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    return {
      ids,
      outcome: res.status === 202 ? 'ok' : res.status < 500 ? 'fail' : 'inDoubt',
      status: res.status,
      code: typeof body?.code === 'string' ? body.code : undefined,
      retryAfter: res.headers.get('retry-after'),
      contentType: res.headers.get('content-type'),
      body,
      error: undefined,
      sentAt,
      answeredAt: Date.now(),
    };
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string } }).cause;
    return {
      ids,
      outcome: 'inDoubt',
      status: 0,
      code: undefined,
      retryAfter: null,
      contentType: null,
      body: undefined,
      error: cause?.code ?? (err as Error).name,
      sentAt,
      answeredAt: Date.now(),
    };
  }
}

export interface StoredIds {
  readonly ids: Set<string>;
  /** event_ids stored more than once (must be empty: the unique index forbids it). */
  readonly duplicated: string[];
}

export async function readStoredIds(db: {
  query<R extends Record<string, unknown>>(sql: string, values?: unknown[]): Promise<R[]>;
}): Promise<StoredIds> {
  const rows = await db.query<{ event_id: string; copies: number }>(
    'SELECT event_id, count(*)::int AS copies FROM events WHERE event_id IS NOT NULL GROUP BY event_id',
  );
  return {
    ids: new Set(rows.map((r) => r.event_id)),
    duplicated: rows.filter((r) => r.copies > 1).map((r) => r.event_id),
  };
}

export interface OracleVerdict {
  /** acked \ stored: must be empty. */
  readonly lostAcked: string[];
  /** refused-before-any-write ∩ stored: must be empty. */
  readonly leakedRejected: string[];
  /** stored \ (acked ∪ in doubt): rows nobody was told about. Must be empty. */
  readonly phantom: string[];
  readonly duplicated: string[];
}

/** `definitelyRefused`: ids that must not be stored beyond the 4xx ones (e.g. a 503 queue_full,
 *  which refuses before enqueuing). */
export function judge(
  log: OutcomeLog,
  stored: StoredIds,
  definitelyRefused: ReadonlySet<string> = new Set(),
): OracleVerdict {
  const acked = log.ids('ok');
  const inDoubt = log.ids('inDoubt');
  const refused = new Set([...log.ids('fail'), ...definitelyRefused]);
  return {
    lostAcked: [...acked].filter((id) => !stored.ids.has(id)),
    leakedRejected: [...refused].filter((id) => stored.ids.has(id)),
    phantom: [...stored.ids].filter((id) => !acked.has(id) && !inDoubt.has(id)),
    duplicated: stored.duplicated,
  };
}

export const cleanVerdict: OracleVerdict = {
  lostAcked: [],
  leakedRejected: [],
  phantom: [],
  duplicated: [],
};
