// POST /events and POST /events/bulk: read → validate → hand to the batcher → answer.
import type { Logger } from 'pino';
import type { Caller } from '../../access/caller.js';
import type { QuotaRefusal } from '../../access/ingest-quota.js';
import type { Config } from '../../config.js';
import { problem, type Problem } from '../../errors.js';
import type { Batcher } from '../../ingest/batcher.js';
import { parseJsonBody } from '../../validation/validate-events.js';
import type { CorsPolicy } from '../cors.js';
import { sendJson, sendProblem, type Exchange } from '../exchange.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { checkBodyHead, readBody } from '../read-body.js';
import type { RequestHead } from '../request-head.js';
import type { Route } from '../route.js';
import { bulkDocumentation, eventsDocumentation } from './ingest-documentation.js';
import { queuedJson, validatedRequest, type Shape } from './ingest-payload.js';

export interface IngestRouteDeps {
  readonly config: Config;
  readonly batcher: Batcher;
  readonly log: Logger;
  readonly telemetry: Telemetry;
  readonly cors: CorsPolicy;
  /** Takes the events from the caller's project quota; the refusal when over it. */
  readonly takeQuota: (caller: Caller, events: number) => QuotaRefusal | null;
}

/** Every error answer of the ingest routes goes through here, so each one is counted. */
function refuse(
  exchange: Exchange,
  route: string,
  p: Problem,
  deps: IngestRouteDeps,
  options: { close?: boolean; headers?: Readonly<Record<string, string>> } = {},
): void {
  deps.telemetry.requestsRejected.inc({ route, code: p.code });
  // The detail may quote the client's bytes (a JSON syntax error, a field name): pino escapes
  // them, so a forged newline cannot start a log line of its own.
  deps.log.debug({ route, code: p.code, detail: p.detail }, 'request refused');
  sendProblem(exchange, p, options);
}

/** A refusal decided from the headers alone, before the body is read: it closes the connection,
 *  whose unread body bytes would otherwise be parsed as the next request. Sent inside the handler,
 *  uWS would still run a request pipelined behind this one before the close took effect (a
 *  chunked body hiding a POST got its 411, and the hidden POST was stored). A turn later, a
 *  pipelined request finds this one pending and uWS drops the connection instead. */
function refuseBeforeBody(exchange: Exchange, route: string, p: Problem, deps: IngestRouteDeps) {
  setImmediate(() => refuse(exchange, route, p, deps, { close: true }));
}

function refuseAfterDiscardingBody(
  exchange: Exchange,
  head: RequestHead,
  route: string,
  p: Problem,
  deps: IngestRouteDeps,
): void {
  void readBody(exchange, head, deps.config, { discard: true }).then((read) => {
    if (exchange.aborted) return;
    if (!read.ok) return refuse(exchange, route, read.problem, deps, { close: read.close });
    refuse(exchange, route, p, deps);
  });
}

export function ingestRoutes(deps: IngestRouteDeps): Route[] {
  const responseHeaders = (head: RequestHead) => deps.cors.responseHeaders(head.origin);
  return (
    [
      ['/events', 'single'],
      ['/events/bulk', 'bulk'],
    ] as const
  ).map(([path, shape]) => ({
    method: 'post',
    path,
    auth: 'write',
    refusedWhileDraining: true,
    readsHead: true,
    responseHeaders,
    refuse: (exchange, p) => refuseBeforeBody(exchange, path, p, deps),
    handler: (exchange, head, caller) => acceptIngest(exchange, head, caller, path, shape, deps),
    ...(shape === 'single' ? eventsDocumentation(deps.config) : bulkDocumentation(deps.config)),
  }));
}

/** Everything decided before the body is read, then the read itself. */
function acceptIngest(
  exchange: Exchange,
  head: RequestHead,
  caller: Caller,
  path: string,
  shape: Shape,
  deps: IngestRouteDeps,
): void {
  const refusal = deps.cors.allowsWrite(head.origin, caller)
    ? checkBodyHead(head, deps.config)
    : problem('origin_not_allowed', "This Origin may not write to the key's project.");
  if (refusal) {
    refuseBeforeBody(exchange, path, refusal, deps);
    return;
  }
  const partial = shape === 'bulk' ? parsePartialFlag(head.query) : false;
  if (typeof partial !== 'boolean') {
    refuseBeforeBody(exchange, path, partial, deps);
    return;
  }
  // Under overload, parsing and validating bodies only to refuse them starves the writers of
  // main-thread time. The body is still consumed, unparsed: answering before it would close the
  // connection, and the refused client would pay a reconnect on top of its Retry-After.
  // The body's Content-Length is held while it is read; what it becomes (a gzip body inflated)
  // is counted again when it is queued.
  const bodyBytes = Number(head.contentLength);
  const full = deps.batcher.queueFullProblem(1, bodyBytes);
  if (full) {
    refuseAfterDiscardingBody(exchange, head, path, full, deps);
    return;
  }
  const releaseRoom = deps.batcher.reserveBytes(bodyBytes);
  ingest(exchange, head, caller, path, shape, partial, deps, releaseRoom).catch((err: unknown) => {
    releaseRoom();
    deps.log.error(
      { err: (err as Error).message, stack: (err as Error).stack },
      'ingest handler failed',
    );
    refuse(exchange, path, problem('internal', 'An unexpected error occurred.'), deps);
  });
}

/** `?partial=true` on /events/bulk: keep the valid events of a bulk request instead of refusing it
 *  whole (the default, as the Go MVP did). Other query parameters are ignored, as it did. */
function parsePartialFlag(query: string): boolean | Problem {
  if (query === '') return false; // nearly every bulk request: no URLSearchParams for it
  const values = new URLSearchParams(query).getAll('partial');
  if (values.length === 0) return false;
  if (values.length === 1 && (values[0] === 'true' || values[0] === '1')) return true;
  if (values.length === 1 && (values[0] === 'false' || values[0] === '0')) return false;
  return problem('invalid_query', 'partial must be given once, as true or false.', {
    errors: { partial: ['must be true or false, given once'] },
  });
}

async function ingest(
  exchange: Exchange,
  head: RequestHead,
  caller: Caller,
  route: string,
  shape: Shape,
  partial: boolean,
  deps: IngestRouteDeps,
  releaseRoom: () => void,
): Promise<void> {
  const { config, batcher } = deps;
  const reading = readBody(exchange, head, config);
  // An aborted body never settles its read: its room comes back on the abort instead.
  const abortRead = exchange.onAbort;
  exchange.onAbort = () => {
    abortRead?.();
    releaseRoom();
  };
  const read = await reading;
  releaseRoom(); // from here to submit runs in one turn: no other request reads meanwhile
  if (!read.ok) return refuse(exchange, route, read.problem, deps, { close: read.close });
  if (exchange.aborted) return;
  const parsed = parseJsonBody(read.body);
  if (!parsed.ok) return refuse(exchange, route, parsed.problem, deps);
  const validated = validatedRequest(parsed, shape, partial, config, Math.floor(Date.now() / 1000));
  if (!validated.ok) return refuse(exchange, route, validated.problem, deps);
  const overQuota = deps.takeQuota(caller, validated.events.length);
  if (overQuota)
    return refuse(exchange, route, overQuota.problem, deps, { headers: overQuota.headers });
  deps.telemetry.eventsReceived.inc({ route }, validated.events.length);
  if (validated.rejected?.count)
    deps.telemetry.eventsRejected.inc({ route }, validated.rejected.count);
  // Partial mode says what it left out, with the field paths a 400 would have named.
  const rejected =
    validated.rejected === undefined
      ? {}
      : validated.rejected.count === 0
        ? { rejected_count: 0 }
        : { rejected_count: validated.rejected.count, errors: validated.rejected.errors };

  const acceptedCount = validated.events.length; // the parsed events need not outlive the await

  // The insert is never cancelled when the client goes away: it is idempotent, and aborting a
  // running Piscina task would kill the writer thread and its connections.
  const result = await batcher.submit(
    {
      json: queuedJson(validated.json, parsed.text, read.body),
      eventCount: acceptedCount,
      projectId: caller.projectId,
    },
    config.ingestAck,
  );
  if (result.kind === 'failed') return refuse(exchange, route, result.problem, deps);
  if (result.kind === 'queued') {
    return shape === 'single'
      ? sendJson(exchange, 202, { status: 'queued' })
      : sendJson(exchange, 202, {
          accepted_count: acceptedCount,
          status: 'queued',
          ...rejected,
        });
  }
  return shape === 'single'
    ? sendJson(exchange, 202, {
        status: 'stored',
        inserted: result.inserted,
        duplicate: result.inserted === 0,
      })
    : sendJson(exchange, 202, {
        accepted_count: acceptedCount,
        inserted: result.inserted,
        duplicates: result.duplicates,
        ...rejected,
      });
}
