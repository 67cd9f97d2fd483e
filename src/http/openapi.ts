// The OpenAPI 3.1 document, built at start-up from the same JSON Schema files the validators are
// generated from, so the contract and the validation cannot drift apart.
import { stringify } from 'yaml';
import type { Config } from '../config.js';
import { problemCatalogue, type ProblemCode } from '../errors.js';
import bulkRequestSchema from '../validation/schemas/bulk-request.schema.json' with { type: 'json' };
import eventSchema from '../validation/schemas/event.schema.json' with { type: 'json' };

type Json = Record<string, unknown>;

const schemaIds: Record<string, string> = {
  [eventSchema.$id]: '#/components/schemas/Event',
  [bulkRequestSchema.$id]: '#/components/schemas/BulkRequest',
};

/** Rewrites `$ref`s to component paths and drops `$id`/`$schema`, which OpenAPI does not need. */
function toComponent(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toComponent);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$id' || key === '$schema' || key === '$defs') continue;
    if (key === '$ref' && typeof value === 'string') {
      out.$ref = schemaIds[value] ?? value.replace('#/$defs/', '#/components/schemas/');
    } else out[key] = toComponent(value);
  }
  return out;
}

const fieldErrorsSchema = {
  type: 'object',
  description: 'Field path (`user_id`, `events[3].timestamp`) → messages.',
  additionalProperties: { type: 'array', items: { type: 'string' } },
};

const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details.',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', enum: Object.keys(problemCatalogue) },
    errors: fieldErrorsSchema,
  },
};

function problemResponse(codes: ProblemCode[]): Json {
  return {
    description: codes.map((c) => `\`${c}\`: ${problemCatalogue[c].title}`).join('; '),
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  };
}

function queryParameter(name: string, description: string, schema: Json): Json {
  return { name, in: 'query', required: false, description, schema };
}

const rateLimitHeaders = {
  'RateLimit-Limit': { schema: { type: 'integer' } },
  'RateLimit-Remaining': { schema: { type: 'integer' } },
  'RateLimit-Reset': {
    description: 'Seconds until the bucket is full again.',
    schema: { type: 'integer' },
  },
};

/** Every route that reads headers or the query string: MAX_HEADER_BYTES bounds each of them. */
const headSizeResponses = {
  '414': problemResponse(['uri_too_long']),
  '431': problemResponse(['header_too_large']),
};

const retryAfterHeader = {
  'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } },
};

/** Every route that checks a key: too many failed attempts from one address refuse it for a while. */
const authFailures429 = {
  ...problemResponse(['too_many_auth_failures']),
  headers: retryAfterHeader,
};

/** The rate-limited routes: over their own limit (RateLimit-* headers set), or over the above. */
const rateLimited429 = {
  ...problemResponse(['rate_limited', 'too_many_auth_failures']),
  headers: { ...retryAfterHeader, ...rateLimitHeaders },
};

function ingestResponses(success: string, extra400: ProblemCode[] = []): Json {
  return {
    '202': {
      description:
        'Accepted. With INGEST_ACK=durable the events are committed; the body says which were new.',
      content: { 'application/json': { schema: { $ref: `#/components/schemas/${success}` } } },
    },
    '400': problemResponse([
      'invalid_json',
      'invalid_encoding',
      'validation_failed',
      'bad_framing',
      ...extra400,
    ]),
    '401': problemResponse(['unauthorized']),
    '408': problemResponse(['body_timeout']),
    '411': problemResponse(['length_required']),
    '413': problemResponse(['payload_too_large']),
    '415': problemResponse(['unsupported_media_type']),
    '422': problemResponse(['unstorable_event']),
    ...headSizeResponses,
    '429': authFailures429,
    '500': problemResponse(['internal']),
    '503': {
      ...problemResponse(['queue_full', 'database_unavailable', 'ingest_timeout', 'shutting_down']),
      headers: retryAfterHeader,
    },
  };
}

/** An export line: the event as ingested plus the server's ingestion time. */
function exportedEvent(): Json {
  const event = toComponent(eventSchema) as Json & { properties: Json; required: string[] };
  return {
    ...event,
    title: 'ExportedEvent',
    required: [...event.required, 'received_at'],
    properties: {
      ...event.properties,
      received_at: { type: 'integer', description: 'Epoch ms when the server stored it.' },
    },
  };
}

/** The CORS preflight, documented only when CORS_ORIGINS is set (otherwise OPTIONS is a 405). */
function preflightOperation(): Json {
  return {
    summary: 'CORS preflight (only with CORS_ORIGINS set)',
    responses: {
      '204': {
        description: 'The Origin is allowed; it is echoed in Access-Control-Allow-Origin.',
        headers: {
          'Access-Control-Allow-Origin': { schema: { type: 'string' } },
          'Access-Control-Allow-Methods': { schema: { type: 'string', const: 'POST' } },
          'Access-Control-Allow-Headers': { schema: { type: 'string' } },
          'Access-Control-Max-Age': { schema: { type: 'integer' } },
          Vary: { schema: { type: 'string', const: 'Origin' } },
        },
      },
      '405': problemResponse(['method_not_allowed']),
      ...headSizeResponses,
    },
  };
}

export function buildOpenApiDocument(
  config: Pick<Config, 'bulkMaxEvents' | 'maxBodyBytes'> & Partial<Pick<Config, 'corsOrigins'>>,
): Json {
  const preflight = (config.corsOrigins?.length ?? 0) > 0 ? { options: preflightOperation() } : {};
  const bulk = toComponent(bulkRequestSchema) as Json & { properties: { events: Json } };
  bulk.properties.events.maxItems = config.bulkMaxEvents;
  const security = [{ apiKey: [] }, { bearer: [] }];
  const jsonBody = (schema: string) => ({
    required: true,
    description: `application/json, optionally Content-Encoding: gzip; at most ${config.maxBodyBytes} bytes (MAX_BODY_BYTES) after inflating.`,
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'pulse event ingestion API',
      version: '1.0.0',
      description: 'Drop-in replacement for the Go events API: POST events, read metrics.',
    },
    paths: {
      '/events': {
        post: {
          summary: 'Ingest one event',
          security,
          requestBody: jsonBody('Event'),
          responses: ingestResponses('SingleIngestResult'),
        },
        ...preflight,
      },
      '/events/bulk': {
        post: {
          summary: `Ingest 1 to BULK_MAX_EVENTS (${config.bulkMaxEvents}) events, all or nothing unless partial=true`,
          security,
          parameters: [
            queryParameter(
              'partial',
              'true: store the valid events and list the invalid ones in the 202 (rejected_count, errors); 400 only when the envelope is wrong or no event is valid. Default false: one invalid event refuses the request (400), as the seed did.',
              { type: 'boolean', default: false },
            ),
          ],
          requestBody: jsonBody('BulkRequest'),
          responses: ingestResponses('BulkIngestResult', ['invalid_query']),
        },
        ...preflight,
      },
      '/metrics': {
        get: {
          summary:
            'Totals, unique users and daily buckets; exact, from the rollup plus the raw tail',
          security,
          parameters: [
            queryParameter('event_name', 'Exact match.', {
              type: 'string',
              minLength: 1,
              maxLength: 128,
            }),
            queryParameter('channel', 'Exact match; events without a channel never match.', {
              type: 'string',
              minLength: 1,
              maxLength: 128,
            }),
            queryParameter('from', 'Epoch seconds, inclusive. Default: to − 24 h.', {
              type: 'integer',
              minimum: 0,
            }),
            queryParameter('to', 'Epoch seconds, inclusive. Default: now (or from, if later).', {
              type: 'integer',
              minimum: 0,
            }),
            queryParameter('group_by', 'Daily UTC buckets.', { type: 'string', enum: ['day'] }),
          ],
          responses: {
            '200': {
              description:
                'The answer; ETag and Cache-Control set; RateLimit-* headers when limiting is on.',
              headers: { ETag: { schema: { type: 'string' } }, ...rateLimitHeaders },
              content: {
                'application/json': { schema: { $ref: '#/components/schemas/MetricsAnswer' } },
              },
            },
            '304': { description: 'Not modified (If-None-Match matched the ETag).' },
            '400': problemResponse(['invalid_query']),
            '401': problemResponse(['unauthorized']),
            ...headSizeResponses,
            '429': rateLimited429,
            '503': {
              ...problemResponse(['database_unavailable', 'shutting_down']),
              headers: retryAfterHeader,
            },
          },
        },
      },
      '/events/export': {
        get: {
          summary: 'Stored events as NDJSON, in occurred_at order (same window rules as /metrics)',
          security,
          parameters: [
            queryParameter('event_name', 'Exact match.', {
              type: 'string',
              minLength: 1,
              maxLength: 128,
            }),
            queryParameter('channel', 'Exact match.', {
              type: 'string',
              minLength: 1,
              maxLength: 128,
            }),
            queryParameter('from', 'Epoch seconds, inclusive.', { type: 'integer', minimum: 0 }),
            queryParameter('to', 'Epoch seconds, inclusive.', { type: 'integer', minimum: 0 }),
          ],
          responses: {
            '200': {
              description:
                'One JSON object per line: the ingested fields plus received_at (epoch ms). A body cut off without its final chunk is incomplete: the reader was too slow (EXPORT_STALL_TIMEOUT_MS, EXPORT_MIN_BYTES_PER_SEC) or the export ran past EXPORT_MAX_DURATION_MS; page by time.',
              headers: rateLimitHeaders,
              content: {
                'application/x-ndjson': { schema: { $ref: '#/components/schemas/ExportedEvent' } },
              },
            },
            '400': problemResponse(['invalid_query']),
            '401': problemResponse(['unauthorized']),
            ...headSizeResponses,
            '429': {
              ...problemResponse(['rate_limited', 'too_many_auth_failures', 'too_many_exports']),
              headers: { ...retryAfterHeader, ...rateLimitHeaders },
            },
            '503': {
              ...problemResponse(['database_unavailable', 'exports_busy', 'shutting_down']),
              headers: retryAfterHeader,
            },
          },
        },
      },
      '/healthz': {
        get: {
          summary: 'The process is alive',
          responses: {
            '200': {
              description: 'Alive',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Status' } } },
            },
          },
        },
      },
      '/readyz': {
        get: {
          summary:
            'Database reachable, migrations applied, writes not failing, queue below its high-water mark, not shutting down',
          responses: {
            '200': {
              description: 'Ready',
              content: {
                'application/json': { schema: { $ref: '#/components/schemas/Readiness' } },
              },
            },
            '503': problemResponse(['not_ready']),
          },
        },
      },
      '/openapi.yaml': {
        get: {
          summary: 'This document',
          responses: {
            '200': {
              description: 'OpenAPI 3.1 YAML',
              content: { 'application/yaml': { schema: { type: 'string' } } },
            },
          },
        },
      },
      '/internal/metrics': {
        get: {
          summary: 'Prometheus text exposition of the service counters, gauges and histograms',
          security,
          responses: {
            '200': {
              description: 'Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            '401': problemResponse(['unauthorized']),
            ...headSizeResponses,
            '429': authFailures429,
            '500': problemResponse(['internal']),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
      schemas: {
        Event: toComponent(eventSchema),
        BulkRequest: bulk,
        ...(toComponent(eventSchema.$defs) as Json),
        SingleIngestResult: {
          type: 'object',
          required: ['status'],
          properties: {
            status: {
              type: 'string',
              enum: ['stored', 'queued'],
              description: '`queued` with INGEST_ACK=queued.',
            },
            inserted: { type: 'integer', enum: [0, 1] },
            duplicate: { type: 'boolean' },
          },
        },
        BulkIngestResult: {
          type: 'object',
          required: ['accepted_count'],
          properties: {
            accepted_count: { type: 'integer' },
            inserted: { type: 'integer', description: 'Absent with INGEST_ACK=queued.' },
            duplicates: { type: 'integer', description: 'Absent with INGEST_ACK=queued.' },
            status: {
              type: 'string',
              enum: ['queued'],
              description: 'Present with INGEST_ACK=queued.',
            },
            rejected_count: {
              type: 'integer',
              description: 'Only with partial=true: invalid events left out (not stored).',
            },
            errors: {
              ...fieldErrorsSchema,
              description:
                'Only with partial=true and rejected_count > 0: why each left-out event was refused, by field path (`events[3].timestamp`).',
            },
          },
        },
        MetricsAnswer: {
          type: 'object',
          required: ['totals', 'as_of', 'cached'],
          properties: {
            totals: { $ref: '#/components/schemas/Counts' },
            buckets: {
              type: 'array',
              description: 'Only with group_by=day: one per UTC day that has events, ascending.',
              items: {
                allOf: [
                  { $ref: '#/components/schemas/Counts' },
                  {
                    type: 'object',
                    required: ['bucket_start'],
                    properties: { bucket_start: { type: 'integer' } },
                  },
                ],
              },
            },
            as_of: {
              type: 'integer',
              description: 'Epoch ms of the database snapshot the numbers reflect.',
            },
            cached: { type: 'boolean', description: 'True when served from the in-process cache.' },
          },
        },
        Counts: {
          type: 'object',
          required: ['count', 'unique_users'],
          properties: { count: { type: 'integer' }, unique_users: { type: 'integer' } },
        },
        ExportedEvent: exportedEvent(),
        Status: {
          type: 'object',
          required: ['status'],
          properties: { status: { type: 'string' } },
        },
        Readiness: {
          type: 'object',
          required: ['status', 'checks'],
          properties: {
            status: { type: 'string' },
            checks: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
        Problem: problemSchema,
      },
    },
  };
}

export function renderOpenApiYaml(config: Pick<Config, 'bulkMaxEvents' | 'maxBodyBytes'>): string {
  return stringify(buildOpenApiDocument(config), { aliasDuplicateObjects: false });
}
