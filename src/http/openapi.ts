// The OpenAPI 3.1 document: each route brings its operation and answer schemas (src/http/routes/),
// this module the parts they share. The event schemas come from the same JSON Schema files the
// validators are generated from, so the contract and the validation cannot drift apart.
import { stringify } from 'yaml';
import type { Config } from '../config.js';
import { problemCatalogue, type ProblemCode } from '../errors.js';
import type { Route } from './route.js';
import bulkRequestSchema from '../validation/schemas/bulk-request.schema.json' with { type: 'json' };
import eventSchema from '../validation/schemas/event.schema.json' with { type: 'json' };
import { livePathItem } from './live-openapi.js';

export type Json = Record<string, unknown>;

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

export const fieldErrorsSchema = {
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
    required_scope: {
      type: 'string',
      enum: ['write', 'read', 'admin', 'root'],
      description: 'With `insufficient_scope`: the scope the route needs.',
    },
  },
};

export function problemResponse(codes: ProblemCode[]): Json {
  return {
    description: codes.map((c) => `\`${c}\`: ${problemCatalogue[c].title}`).join('; '),
    ...bodyOf('application/problem+json', 'Problem'),
  };
}

export function queryParameter(name: string, description: string, schema: Json): Json {
  return { name, in: 'query', required: false, description, schema };
}

/** The filters /metrics and /events/export share. */
export function eventFilterParameters(channelDescription: string): Json[] {
  const text = () => ({ type: 'string', minLength: 1, maxLength: 128 });
  return [
    queryParameter('event_name', 'Exact match.', text()),
    queryParameter('channel', channelDescription, text()),
  ];
}

/** A response body of one media type, described by a schema of components/schemas. */
export function bodyOf(mediaType: string, schemaName: string): Json {
  return { content: { [mediaType]: { schema: { $ref: `#/components/schemas/${schemaName}` } } } };
}

export const rateLimitHeaders = {
  'RateLimit-Limit': { schema: { type: 'integer' } },
  'RateLimit-Remaining': { schema: { type: 'integer' } },
  'RateLimit-Reset': {
    description: 'Seconds until the bucket is full again.',
    schema: { type: 'integer' },
  },
};

/** Every route that reads headers or the query string: MAX_HEADER_BYTES bounds each of them. */
export const headSizeResponses = {
  '414': problemResponse(['uri_too_long']),
  '431': problemResponse(['header_too_large']),
};

export const retryAfterHeader = {
  'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } },
};

/** Every route that checks a key: too many failed attempts from one address refuse it for a while. */
export const authFailures429 = {
  ...problemResponse(['too_many_auth_failures']),
  headers: retryAfterHeader,
};

/** The rate-limited routes: over their own limit (RateLimit-* headers set), or over the above. */
export const rateLimited429 = {
  ...problemResponse(['rate_limited', 'too_many_auth_failures']),
  headers: { ...retryAfterHeader, ...rateLimitHeaders },
};

/** An export line: the event as ingested plus the server's ingestion time. */
export function exportedEvent(): Json {
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

const security = [{ apiKey: [] }, { bearer: [] }];

/** Every keyed route: a key of another scope than the one named. */
export const insufficientScope403 = problemResponse(['insufficient_scope']);

/** The paths in the order of the routes; `security` and the scope follow the summary, as written
 *  by hand; a 403 for a key of another scope unless the route documents its own. */
function pathsOf(routes: readonly Route[]): Json {
  const paths: Record<string, Json> = {};
  for (const { path, method, auth, operation } of routes) {
    const secured =
      auth === 'none'
        ? {}
        : {
            summary: operation.summary,
            description: `Needs a key with the \`${auth}\` scope, or a root key (API_KEYS).`,
            security,
          };
    const responses = operation.responses as Json;
    const documented =
      auth === 'none' || responses['403'] !== undefined
        ? operation
        : { ...operation, responses: { ...responses, '403': insufficientScope403 } };
    const template = path.replace(/:(\w+)/g, '{$1}');
    paths[template] = { ...paths[template], [method]: { ...secured, ...documented } };
  }
  return paths;
}

/** The response schemas of every route, in route order. */
function schemasOf(routes: readonly Route[]): Json {
  return Object.assign({}, ...routes.map((route) => route.schemas)) as Json;
}

export function buildOpenApiDocument(
  config: Pick<Config, 'bulkMaxEvents'>,
  routes: readonly Route[],
): Json {
  const bulk = toComponent(bulkRequestSchema) as Json & { properties: { events: Json } };
  bulk.properties.events.maxItems = config.bulkMaxEvents;
  return {
    openapi: '3.1.0',
    info: {
      title: 'pulse event ingestion API',
      version: '1.0.0',
      description: 'Drop-in replacement for the Go events API: POST events, read metrics.',
    },
    paths: { ...pathsOf(routes), '/live': livePathItem },
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        bearer: { type: 'http', scheme: 'bearer' },
      },
      schemas: {
        Event: toComponent(eventSchema),
        BulkRequest: bulk,
        ...(toComponent(eventSchema.$defs) as Json),
        ...schemasOf(routes),
        Problem: problemSchema,
      },
    },
  };
}

export function renderOpenApiYaml(
  config: Pick<Config, 'bulkMaxEvents'>,
  routes: readonly Route[],
): string {
  return stringify(buildOpenApiDocument(config, routes), { aliasDuplicateObjects: false });
}
