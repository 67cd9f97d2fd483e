// POST /events and POST /events/bulk: read → validate → hand to the batcher → answer.
import type { Logger } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../../config.js';
import { problem } from '../../errors.js';
import type { Batcher } from '../../ingest/batcher.js';
import {
  parseJsonBody,
  validateBulk,
  validateSingleEvent,
} from '../../validation/validate-events.js';
import type { ApiKeyCheck } from '../api-key-auth.js';
import { beginExchange, sendJson, sendProblem, type Exchange } from '../exchange.js';
import { checkBodyHead, readBody, readHead, type RequestHead } from '../read-body.js';

export interface IngestRouteDeps {
  readonly config: Config;
  readonly batcher: Batcher;
  readonly authorize: ApiKeyCheck;
  readonly log: Logger;
  readonly isDraining: () => boolean;
}

type Shape = 'single' | 'bulk';

export function registerIngestRoutes(app: TemplatedApp, deps: IngestRouteDeps): void {
  for (const [path, shape] of [
    ['/events', 'single'],
    ['/events/bulk', 'bulk'],
  ] as const) {
    app.post(path, (res, req) => {
      const exchange = beginExchange(res);
      const head = readHead(req);
      if (deps.isDraining()) {
        sendProblem(
          exchange,
          problem('shutting_down', 'The server is shutting down; retry on another connection.', {
            retryAfterSeconds: deps.config.retryAfterSeconds,
          }),
          { close: true },
        );
        return;
      }
      // An answer sent before the body is read closes the connection: its unread bytes would
      // otherwise be parsed as the next request.
      if (!deps.authorize(head)) {
        sendProblem(
          exchange,
          problem('unauthorized', 'Send a valid key in X-API-Key or Authorization: Bearer.'),
          { close: true },
        );
        return;
      }
      const refusal = checkBodyHead(head, deps.config);
      if (refusal) {
        sendProblem(exchange, refusal, { close: true });
        return;
      }
      ingest(exchange, head, shape, deps).catch((err: unknown) => {
        deps.log.error(
          { err: (err as Error).message, stack: (err as Error).stack },
          'ingest handler failed',
        );
        sendProblem(exchange, problem('internal', 'An unexpected error occurred.'));
      });
    });
  }
}

async function ingest(
  exchange: Exchange,
  head: RequestHead,
  shape: Shape,
  deps: IngestRouteDeps,
): Promise<void> {
  const { config, batcher } = deps;
  const read = await readBody(exchange, head, config);
  if (!read.ok) return sendProblem(exchange, read.problem, { close: read.close });
  if (exchange.aborted) return;
  const parsed = parseJsonBody(read.body);
  if (!parsed.ok) return sendProblem(exchange, parsed.problem);
  const nowSeconds = Math.floor(Date.now() / 1000);
  const validated =
    shape === 'single'
      ? validateSingleEvent(parsed.value, config, nowSeconds)
      : validateBulk(parsed.value, config, nowSeconds);
  if (!validated.ok) return sendProblem(exchange, validated.problem);

  // The insert is never cancelled when the client goes away: it is idempotent, and aborting a
  // running Piscina task would kill the writer thread and its connections.
  const result = await batcher.submit(validated.events, config.ingestAck);
  if (result.kind === 'failed') return sendProblem(exchange, result.problem);
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
