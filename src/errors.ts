// The one catalogue of errors a client can see, and their RFC 9457 problem+json rendering.
// docs/errors.md lists the same entries; a unit test keeps the two in step.

export const problemCatalogue = {
  invalid_json: { status: 400, title: 'Request body is not valid JSON' },
  invalid_encoding: { status: 400, title: 'Request body is not valid UTF-8' },
  validation_failed: { status: 400, title: 'Request body failed validation' },
  invalid_query: { status: 400, title: 'Query parameters are invalid' },
  bad_framing: { status: 400, title: 'Request framing is ambiguous' },
  unauthorized: { status: 401, title: 'Missing or invalid API key' },
  insufficient_scope: { status: 403, title: 'The key does not have the scope this route needs' },
  other_project: { status: 403, title: 'The key belongs to another project' },
  origin_not_allowed: { status: 403, title: 'The Origin may not write to this project' },
  not_found: { status: 404, title: 'No such route' },
  project_not_found: { status: 404, title: 'No such project' },
  key_not_found: { status: 404, title: 'No such key' },
  method_not_allowed: { status: 405, title: 'Method not allowed on this route' },
  body_timeout: { status: 408, title: 'Request body did not arrive in time' },
  project_name_taken: { status: 409, title: 'A project with this name exists' },
  length_required: { status: 411, title: 'Content-Length is required' },
  payload_too_large: { status: 413, title: 'Request body is too large' },
  uri_too_long: { status: 414, title: 'Request URI is too long' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  upgrade_required: { status: 426, title: 'This route is a WebSocket' },
  unstorable_event: { status: 422, title: 'The database refused the events' },
  rate_limited: { status: 429, title: 'Too many requests' },
  too_many_auth_failures: { status: 429, title: 'Too many failed API key attempts' },
  quota_exceeded: { status: 429, title: "Over the project's ingest quota" },
  too_many_exports: { status: 429, title: 'Too many exports at once' },
  header_too_large: { status: 431, title: 'Request header is too large' },
  internal: { status: 500, title: 'Internal server error' },
  queue_full: { status: 503, title: 'Ingestion queue is full' },
  database_unavailable: { status: 503, title: 'Database is unavailable' },
  ingest_timeout: { status: 503, title: 'Events were not confirmed in time' },
  shutting_down: { status: 503, title: 'Server is shutting down' },
  not_ready: { status: 503, title: 'Service is not ready' },
  exports_busy: { status: 503, title: 'Every export connection is in use' },
  metrics_busy: { status: 503, title: 'Every metrics connection is in use' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof problemCatalogue;

/** Field path (`user_id`, `events[3].timestamp`) → messages, the Go MVP's validation shape. */
export type FieldErrors = Record<string, string[]>;

export interface Problem {
  readonly code: ProblemCode;
  readonly detail: string;
  readonly errors?: FieldErrors;
  /** Seconds; sent as Retry-After. */
  readonly retryAfterSeconds?: number;
  /** Extra members of the body (RFC 9457 extension members). */
  readonly extensions?: Record<string, unknown>;
}

export function problem(
  code: ProblemCode,
  detail: string,
  extra: Omit<Problem, 'code' | 'detail'> = {},
): Problem {
  return { code, detail, ...extra };
}

/** Every route's answer once shutdown has begun, on a connection that was already open. */
export function shuttingDownProblem(retryAfterSeconds: number): Problem {
  return problem('shutting_down', 'The server is shutting down; retry on another connection.', {
    retryAfterSeconds,
  });
}

export function problemStatus(p: Problem): number {
  return problemCatalogue[p.code].status;
}

export function problemBody(p: Problem): string {
  const entry = problemCatalogue[p.code];
  return JSON.stringify({
    type: `urn:pulse:problem:${p.code}`,
    title: entry.title,
    status: entry.status,
    detail: p.detail,
    code: p.code,
    ...(p.errors ? { errors: p.errors } : {}),
    ...p.extensions,
  });
}
