// /openapi.yaml is a valid OpenAPI 3.1 document, covers exactly the routes the server registers,
// and is what every response is checked against (test/helpers/contract.ts).
import { Validator } from '@seriousme/openapi-schema-validator';
import { pino } from 'pino';
import type { TemplatedApp } from 'uWebSockets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config.js';
import { createApp, type App, type HttpServerDeps } from '../../src/http/http-server.js';
import type { Uws } from '../../src/http/load-uws.js';
import {
  ContractViolation,
  httpMethods,
  ResponseContract,
  type OpenApiDocument,
  type OperationObject,
  watchResponses,
} from '../helpers/contract.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let db: TestDatabase;
let server: TestServer;
let yamlText: string;
let document: OpenApiDocument;
let unwatchReal = (): void => undefined;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, { RATE_LIMIT_METRICS_PER_MIN: '0' });
  yamlText = await (await fetch(`${server.url}/openapi.yaml`)).text();
  document = parseYaml(yamlText) as OpenApiDocument;
});
afterAll(async () => {
  unwatchReal();
  await server?.stop();
  await db?.close();
});

/** `METHOD /path` of every operation in the document, sorted. */
function documentedOperations(doc: OpenApiDocument): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, item]) =>
      httpMethods.filter((m) => item[m] !== undefined).map((m) => `${m.toUpperCase()} ${path}`),
    )
    .sort();
}

function operationsOf(doc: OpenApiDocument): [string, string, OperationObject][] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    httpMethods
      .filter((m) => item[m] !== undefined)
      .map((m): [string, string, OperationObject] => [m, path, item[m] as OperationObject]),
  );
}

/** Runs createApp against a uWS stand-in that only records registrations: the real route table,
 *  with no socket and no handler ever called. */
function createRecordedApp(): { routes: string[]; created: App } {
  const routes: string[] = [];
  const app: TemplatedApp = new Proxy({} as TemplatedApp, {
    get:
      (_target, method: string) =>
      (pattern: string): TemplatedApp => {
        routes.push(`${method.toUpperCase()} ${pattern}`);
        return app;
      },
  });
  const deps = {
    config: loadConfig({}),
    log: pino({ level: 'silent' }),
  } as unknown as HttpServerDeps;
  return { routes, created: createApp({ App: () => app } as unknown as Uws, deps) };
}

/** uWS's spelling of a route (`del`, `ws`, `/:id`) as the document's (`DELETE`, `GET`, `/{id}`). */
const asDocumented = (route: string) =>
  route
    .replace(/^DEL /, 'DELETE ')
    .replace(/^WS /, 'GET ')
    .replace(/:(\w+)/g, '{$1}');

function registeredRoutes(): string[] {
  // any() holds the 404/405 fallbacks, which the document cannot describe.
  // GET /live is registered twice: the upgrade (ws) and the answer to a plain GET.
  const routes = createRecordedApp()
    .routes.filter((r) => !r.startsWith('ANY '))
    .map(asDocumented);
  return [...new Set(routes)].sort();
}

describe('GET /openapi.yaml', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(yamlText);
    expect({ valid: result.valid, errors: result.errors, version: validator.version }).toEqual({
      valid: true,
      errors: undefined,
      version: '3.1',
    });
  });

  it('is judged by a validator that rejects a response without its description', async () => {
    const broken = structuredClone(document) as unknown as {
      paths: Record<string, { get: { responses: Record<string, object> } }>;
    };
    broken.paths['/healthz']!.get.responses['200'] = {};
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('compiles every response schema as JSON Schema 2020-12 with every $ref resolved', () => {
    const contract = new ResponseContract(document);
    const pointers = contract.responseSchemaPointers();
    expect(pointers.length).toBeGreaterThan(0);
    for (const pointer of pointers) expect(() => contract.validator(pointer)).not.toThrow();
  });

  it('declares a 2xx answer for every operation and a schema for every response body', () => {
    const gaps = operationsOf(document).flatMap(([method, path, operation]) => {
      const where = `${method.toUpperCase()} ${path}`;
      const statuses = Object.keys(operation.responses);
      return [
        // A WebSocket's success is its upgrade; a route whose only job is to redirect (`/`)
        // answers 3xx alone.
        ...(statuses.some((s) => s.startsWith('2') || (s === '101' && where === 'GET /live')) ||
        statuses.every((s) => s.startsWith('3'))
          ? []
          : [`${where}: no 2xx`]),
        ...statuses.flatMap((status) =>
          Object.entries(operation.responses[status]!.content ?? {})
            .filter(([, media]) => media.schema === undefined)
            .map(([type]) => `${where} ${status} ${type}: no schema`),
        ),
      ];
    });
    expect(gaps).toEqual([]);
  });
});

describe('routes and the document', () => {
  it('documents every route createApp registers, and no other', () => {
    expect(registeredRoutes()).toEqual(documentedOperations(document));
  });

  it('lists every documented operation in the table that drives 405 and Allow', () => {
    const listed = Object.entries(createRecordedApp().created.allowedMethods)
      .flatMap(([path, methods]) =>
        methods.split(/\s*,\s*/).map((m) => asDocumented(`${m} ${path}`)),
      )
      .sort();
    // The CORS preflight answers OPTIONS itself; the table is for the 405 of other methods.
    expect(listed).toEqual(
      documentedOperations(document).filter((op) => !op.startsWith('OPTIONS ')),
    );
  });

  it('answers every documented operation with a status and body the document declares', async () => {
    const contract = new ResponseContract(document);
    const answers: string[] = [];
    for (const [method, path] of operationsOf(document)) {
      const res =
        method === 'post'
          ? await fetch(`${server.url}${path}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(
                path === '/events/bulk' ? { events: [makeEvent()] } : makeEvent(),
              ),
            })
          : await fetch(`${server.url}${path}`, {
              method: method.toUpperCase(),
              redirect: 'manual',
            });
      const text = await res.text();
      contract.check(method, path, res.status, res.headers.get('content-type'), text);
      answers.push(`${method.toUpperCase()} ${path} ${res.status}`);
    }
    // Open mode: the admin API still needs a key; a preflight without an allowed Origin is 405.
    // GET /live without an Upgrade header: 426. `/` redirects to the dashboard.
    const expected = (method: string, path: string) =>
      path.startsWith('/admin/')
        ? 401
        : path === '/live'
          ? 426
          : method === 'options'
            ? 405
            : method === 'post'
              ? 202
              : path === '/'
                ? 302
                : 200;
    expect(answers).toEqual(
      operationsOf(document).map(
        ([method, path]) => `${method.toUpperCase()} ${path} ${expected(method, path)}`,
      ),
    );
  });
});

describe('the response contract check', () => {
  it.each([
    ['a body that breaks its schema', 'POST', '/events', 202, 'application/json', '{"status":"?"}'],
    ['an undocumented status', 'POST', '/events', 404, 'application/problem+json', '{}'],
    ['an undocumented content type', 'GET', '/healthz', 200, 'text/html', '<p>ok</p>'],
    ['a body where none is documented', 'GET', '/metrics', 304, 'application/json', '{}'],
    ['an undocumented path', 'GET', '/secret', 200, 'application/json', '{}'],
    ['a problem without its code', 'GET', '/metrics', 400, 'application/problem+json', '{}'],
  ])('refuses %s', (_what, method, path, status, type, body) => {
    const contract = new ResponseContract(document);
    expect(() => contract.check(method, path, status, type, body)).toThrow(ContractViolation);
  });

  it('fails the fetch that received a response breaking the contract, and the file with it', async () => {
    // The server's 202 checked against a copy of the document that no longer allows it.
    const stricter = structuredClone(document) as unknown as {
      components: { schemas: { SingleIngestResult: { required: string[] } } };
    };
    stricter.components.schemas.SingleIngestResult.required.push('never_sent');
    const unwatch = watchResponses(server.url, stricter as unknown as OpenApiDocument);
    try {
      await expect(postJson(`${server.url}/events`, makeEvent())).rejects.toThrow(/never_sent/);
    } finally {
      expect(unwatch).toThrow(/1 response\(s\) from .* broke \/openapi\.yaml/);
      // Back to the real document for the rest of the file; afterAll's stop() ends it.
      unwatchReal = watchResponses(server.url, document);
    }
  });
});
