// POST /events and POST /events/bulk: read → validate → hand to the batcher → answer.
import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../../config.js';
import { problem, shuttingDownProblem, type Problem } from '../../errors.js';
import type { Batcher } from '../../ingest/batcher.js';
import {
  parseJsonBody,
  validateBulk,
  validateSingleEvent,
} from '../../validation/validate-events.js';
import { unauthorizedProblem, type ApiKeyCheck } from '../api-key-auth.js';
import { createCorsPolicy } from '../cors.js';
import { beginExchange, sendEmpty, sendJson, sendProblem, type Exchange } from '../exchange.js';
import type { ServiceMetrics } from '../../telemetry/service-metrics.js';
import { checkBodyHead, readBody, readHead, type RequestHead } from '../read-body.js';

export interface IngestRouteDeps {
  readonly config: Config;
  readonly batcher: Batcher;
  readonly authorize: ApiKeyCheck;
  readonly log: Logger;
  readonly isDraining: () => boolean;
  readonly metrics: ServiceMetrics;
}

type Shape = 'single' | 'bulk';

/** Every error answer of the ingest routes goes through here, so each one is counted. */
function refuse(
  exchange: Exchange,
  route: string,
  p: Problem,
  deps: IngestRouteDeps,
  options: { close?: boolean } = {},
): void {
  deps.metrics.requestsRejected.inc({ route, code: p.code });
  // The detail may quote the client's bytes (a JSON syntax error, a field name): pino escapes
  // them, so a forged newline cannot start a log line of its own.
  deps.log.debug({ route, code: p.code, detail: p.detail }, 'request refused');
  sendProblem(exchange, p, options);
}

/** A refusal decided from the headers alone, before the body is read. Sent inside the handler,
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
  deps: IngestRouteDeps,
): void {
  void readBody(exchange, head, deps.config, { discard: true }).then((read) => {
    if (exchange.aborted) return;
    if (!read.ok) return refuse(exchange, route, read.problem, deps, { close: read.close });
    refuse(
      exchange,
      route,
      problem('queue_full', `The ingestion queue is full (${deps.config.queueMaxSize} events).`, {
        retryAfterSeconds: deps.config.retryAfterSeconds,
      }),
      deps,
    );
  });
}

export function registerIngestRoutes(app: TemplatedApp, deps: IngestRouteDeps): void {
  const cors = createCorsPolicy(deps.config.corsOrigins);
  for (const [path, shape] of [
    ['/events', 'single'],
    ['/events/bulk', 'bulk'],
  ] as const) {
    // Without CORS_ORIGINS no OPTIONS route exists: a preflight gets the router's 405.
    if (cors.enabled) {
      app.options(path, (res, req) => {
        const exchange = beginExchange(res);
        const headers = cors.preflightHeaders(req.getHeader('origin'));
        if (headers) sendEmpty(exchange, 204, headers);
        else
          sendProblem(exchange, problem('method_not_allowed', `${path} answers POST only.`), {
            headers: { allow: 'POST', vary: 'Origin' },
            close: true,
          });
      });
    }
    app.post(path, (res, req) => {
      const exchange = beginExchange(res);
      const head = readHead(req);
      exchange.headers = cors.responseHeaders(head.origin);
      if (deps.isDraining()) {
        refuseBeforeBody(exchange, path, shuttingDownProblem(deps.config.retryAfterSeconds), deps);
        return;
      }
      // An answer sent before the body is read closes the connection: its unread bytes would
      // otherwise be parsed as the next request.
      if (!deps.authorize(head)) {
        refuseBeforeBody(exchange, path, unauthorizedProblem, deps);
        return;
      }
      const refusal = checkBodyHead(head, deps.config);
      if (refusal) {
        refuseBeforeBody(exchange, path, refusal, deps);
        return;
      }
      // Under overload, parsing and validating bodies only to refuse them starved the writers of
      // main-thread time (bulk at 10× overload: 13k stored events/s instead of 66k). The body is
      // still consumed, unparsed: answering before it would close the connection, and the refused
      // client would pay a reconnect on top of its Retry-After (seconds of latency at c=500).
      if (deps.batcher.isFull) {
        refuseAfterDiscardingBody(exchange, head, path, deps);
        return;
      }
      ingest(exchange, head, path, shape, deps).catch((err: unknown) => {
        deps.log.error(
          { err: (err as Error).message, stack: (err as Error).stack },
          'ingest handler failed',
        );
        refuse(exchange, path, problem('internal', 'An unexpected error occurred.'), deps);
      });
    });
  }
}

async function ingest(
  exchange: Exchange,
  head: RequestHead,
  route: string,
  shape: Shape,
  deps: IngestRouteDeps,
): Promise<void> {
  const { config, batcher } = deps;
  const read = await readBody(exchange, head, config);
  if (!read.ok) return refuse(exchange, route, read.problem, deps, { close: read.close });
  if (exchange.aborted) return;
  const parsed = parseJsonBody(read.body);
  if (!parsed.ok) return refuse(exchange, route, parsed.problem, deps);
  const nowSeconds = Math.floor(Date.now() / 1000);
  const validated =
    shape === 'single'
      ? validateSingleEvent(parsed.value, config, nowSeconds)
      : validateBulk(parsed.value, config, nowSeconds);
  if (!validated.ok) return refuse(exchange, route, validated.problem, deps);
  deps.metrics.eventsReceived.inc({ route }, validated.events.length);

  // The insert is never cancelled when the client goes away: it is idempotent, and aborting a
  // running Piscina task would kill the writer thread and its connections.
  const result = await batcher.submit(
    { json: parsed.text, eventCount: validated.events.length },
    config.ingestAck,
  );
  if (result.kind === 'failed') return refuse(exchange, route, result.problem, deps);
  if (result.kind === 'queued') {
    return shape === 'single'
      ? sendJson(exchange, 202, { status: 'queued' })
      : sendJson(exchange, 202, { accepted_count: validated.events.length, status: 'queued' });
  }
  return shape === 'single'
    ? sendJson(exchange, 202, {
        status: 'stored',
        inserted: result.inserted,
        duplicate: result.inserted === 0,
      })
    : sendJson(exchange, 202, {
        accepted_count: validated.events.length,
        inserted: result.inserted,
        duplicates: result.duplicates,
      });
}
