// The admin API's entries in /openapi.yaml: each operation with its answers, and the schemas of
// its bodies (the request schemas are the ones the validators are generated from).
import keyCreateSchema from '../../validation/schemas/key-create.schema.json' with { type: 'json' };
import projectCreateSchema from '../../validation/schemas/project-create.schema.json' with { type: 'json' };
import projectUpdateSchema from '../../validation/schemas/project-update.schema.json' with { type: 'json' };
import {
  bodyOf,
  headSizeResponses,
  problemResponse,
  retryAfterHeader,
  type Json,
} from '../openapi.js';
import type { OpenApiOperation, Route } from '../route.js';

/** A request schema as a component: without the `$id` and `$schema` OpenAPI does not need. */
function requestSchema(schema: Json): Json {
  return Object.fromEntries(Object.entries(schema).filter(([key]) => !key.startsWith('$')));
}

const epochSeconds = { type: 'integer', description: 'Epoch seconds.' };
const idString = { type: 'string', description: 'Decimal digits.' };

const schemas = {
  ProjectCreate: requestSchema(projectCreateSchema),
  KeyCreate: requestSchema(keyCreateSchema),
  ProjectUpdate: requestSchema(projectUpdateSchema),
  Project: {
    type: 'object',
    required: ['id', 'name', 'created_at'],
    additionalProperties: false,
    properties: { id: idString, name: { type: 'string' }, created_at: epochSeconds },
  },
  ProjectList: {
    type: 'object',
    required: ['projects'],
    properties: { projects: { type: 'array', items: { $ref: '#/components/schemas/Project' } } },
  },
  ProjectSettings: {
    type: 'object',
    required: [
      'id',
      'name',
      'created_at',
      'ingest_events_per_second',
      'metrics_requests_per_minute',
      'cors_origins',
    ],
    additionalProperties: false,
    properties: {
      id: idString,
      name: { type: 'string' },
      created_at: epochSeconds,
      ingest_events_per_second: { type: ['integer', 'null'] },
      metrics_requests_per_minute: { type: ['integer', 'null'] },
      cors_origins: { type: 'array', items: { type: 'string' } },
    },
  },
  CreatedKey: {
    type: 'object',
    required: ['id', 'key', 'scope', 'project_id'],
    additionalProperties: false,
    properties: {
      id: idString,
      key: {
        type: 'string',
        description: 'The secret, shown this once: pk_w_, pk_r_ or pk_a_ and 192 random bits.',
        pattern: '^pk_[wra]_[A-Za-z0-9_-]{32}$',
      },
      scope: { type: 'string', enum: ['write', 'read', 'admin'] },
      project_id: idString,
    },
  },
  KeyList: {
    type: 'object',
    required: ['keys'],
    properties: {
      keys: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id', 'scope', 'name', 'created_at', 'last_used_at', 'revoked'],
          additionalProperties: false,
          properties: {
            id: idString,
            scope: { type: 'string', enum: ['write', 'read', 'admin'] },
            name: { type: ['string', 'null'] },
            created_at: epochSeconds,
            last_used_at: {
              type: ['integer', 'null'],
              description: 'Epoch seconds, to within ACCESS_REFRESH_MS.',
            },
            revoked: { type: 'boolean' },
          },
        },
      },
    },
  },
};

const idParameter = (what: string): Json => ({
  name: 'id',
  in: 'path',
  required: true,
  description: `The ${what}'s id.`,
  schema: { type: 'string', pattern: '^[0-9]{1,10}$' },
});

const jsonBody = (schemaName: string): Json => ({
  required: true,
  ...bodyOf('application/json', schemaName),
});

const common = {
  '401': problemResponse(['unauthorized']),
  ...headSizeResponses,
  '429': { ...problemResponse(['too_many_auth_failures']), headers: retryAfterHeader },
  '503': {
    ...problemResponse(['database_unavailable', 'shutting_down']),
    headers: retryAfterHeader,
  },
};

/** What a body adds: its own refusals. */
const bodyRefusals = {
  '400': problemResponse(['invalid_json', 'invalid_encoding', 'validation_failed', 'bad_framing']),
  '408': problemResponse(['body_timeout']),
  '411': problemResponse(['length_required']),
  '413': problemResponse(['payload_too_large']),
  '415': problemResponse(['unsupported_media_type']),
};

const ok = (status: string, description: string, schemaName: string) => ({
  [status]: { description, ...bodyOf('application/json', schemaName) },
});

const operations: Record<string, OpenApiOperation> = {
  'post /admin/projects': {
    summary: 'Create a project (root keys only)',
    requestBody: jsonBody('ProjectCreate'),
    responses: {
      ...ok('201', 'Created.', 'Project'),
      ...bodyRefusals,
      '403': problemResponse(['insufficient_scope']),
      '409': problemResponse(['project_name_taken']),
      ...common,
    },
  },
  'get /admin/projects': {
    summary: 'List projects: all of them for a root key, its own for an admin key',
    responses: { ...ok('200', 'The projects, by id.', 'ProjectList'), ...common },
  },
  'patch /admin/projects/:id': {
    summary:
      "Change a project's quotas and CORS origins (any subset); in force everywhere within 2 s",
    parameters: [idParameter('project')],
    requestBody: jsonBody('ProjectUpdate'),
    responses: {
      ...ok('200', 'The project with its settings.', 'ProjectSettings'),
      ...bodyRefusals,
      '403': problemResponse(['insufficient_scope', 'other_project']),
      '404': problemResponse(['project_not_found']),
      ...common,
    },
  },
  'post /admin/projects/:id/keys': {
    summary: 'Create a key of the project; its secret is in this answer only',
    parameters: [idParameter('project')],
    requestBody: jsonBody('KeyCreate'),
    responses: {
      ...ok('201', 'Created.', 'CreatedKey'),
      ...bodyRefusals,
      '403': problemResponse(['insufficient_scope', 'other_project']),
      '404': problemResponse(['project_not_found']),
      ...common,
    },
  },
  'get /admin/projects/:id/keys': {
    summary: "List the project's keys, revoked ones included; never a secret",
    parameters: [idParameter('project')],
    responses: {
      ...ok('200', 'The keys, by id.', 'KeyList'),
      '403': problemResponse(['insufficient_scope', 'other_project']),
      '404': problemResponse(['project_not_found']),
      ...common,
    },
  },
  'delete /admin/keys/:id': {
    summary: 'Revoke a key: refused on every process and instance within 2 s',
    parameters: [idParameter('key')],
    responses: {
      '204': { description: 'Revoked (revoking a revoked key changes nothing).' },
      '403': problemResponse(['insufficient_scope', 'other_project']),
      '404': problemResponse(['key_not_found']),
      ...common,
    },
  },
};

export function adminDocumentation(
  method: Route['method'],
  path: string,
): Pick<Route, 'operation' | 'schemas'> {
  const operation = operations[`${method} ${path}`];
  if (operation === undefined) throw new Error(`no documentation for ${method} ${path}`);
  // The schemas once, with the first admin route.
  return path === '/admin/projects' && method === 'post' ? { operation, schemas } : { operation };
}
