// The OpenAPI document as the oracle for every response the integration suites receive: status,
// content type and body must be what the document declares for that path and method.
// `watchResponses` wraps the global fetch so suites need no changes (startTestServer calls it).
import Ajv2020 from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';

interface MediaTypeObject {
  readonly schema?: unknown;
}
interface ResponseObject {
  readonly content?: Readonly<Record<string, MediaTypeObject>>;
}
export interface OperationObject {
  readonly responses: Readonly<Record<string, ResponseObject>>;
}
export interface OpenApiDocument {
  readonly openapi: string;
  readonly paths: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly components?: { readonly schemas?: Readonly<Record<string, unknown>> };
}

export const httpMethods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export class ContractViolation extends Error {
  override readonly name = 'ContractViolation';
}

/** The document is added to ajv under this id, so `#/components/schemas/...` refs resolve in it. */
const documentId = 'urn:pulse:openapi';

const openApiFields = [
  'openapi',
  'info',
  'jsonSchemaDialect',
  'servers',
  'paths',
  'webhooks',
  'components',
  'security',
  'tags',
  'externalDocs',
];

/** The router's fallbacks (src/http/http-server.ts) answer paths and methods the document has no
 *  operation for; OpenAPI cannot declare those, so they are held to the Problem schema here. */
const fallbackStatus = { unknownPath: 404, unknownMethod: 405 } as const;

function pointer(...segments: string[]): string {
  return segments
    .map((s) => '/' + encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1')))
    .join('');
}

function mediaTypeOf(contentType: string | null): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function isJson(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

/** The schema a response body must match, or null when the document declares no body. */
export interface Expectation {
  readonly where: string;
  readonly mediaType: string;
  /** JSON pointer into the document; undefined when the media type declares no schema. */
  readonly schemaPointer: string | undefined;
  readonly bodyless: boolean;
}

export class ResponseContract {
  private readonly ajv: InstanceType<typeof Ajv2020.default>;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(readonly document: OpenApiDocument) {
    this.ajv = new Ajv2020.default({ allErrors: true, allowUnionTypes: true });
    // The document's own fields (ajv compiles the root to resolve a ref into it; as vocabulary
    // they are not descended into) and the annotations OpenAPI adds to Schema Objects.
    this.ajv.addVocabulary([...openApiFields, 'example', 'xml']);
    this.ajv.addSchema({ ...document, $id: documentId });
  }

  /** Throws ContractViolation unless the response is one the document declares. */
  check(
    method: string,
    url: string,
    status: number,
    contentType: string | null,
    bodyText: string,
  ): void {
    const expected = this.checkHead(method, url, status, contentType);
    this.checkBody(expected, bodyText);
  }

  /** Status and content type only: what can be checked before a streamed body has arrived. */
  checkHead(method: string, url: string, status: number, contentType: string | null): Expectation {
    const path = new URL(url, 'http://contract.invalid').pathname;
    const verb = method.toLowerCase();
    const where = `${method.toUpperCase()} ${path} → ${status} ${contentType ?? '(no content type)'}`;
    const documentPath = path in this.document.paths ? path : this.templateOf(path);
    const pathItem = documentPath === undefined ? undefined : this.document.paths[documentPath];
    const operation = pathItem?.[verb] as OperationObject | undefined;
    const mediaType = mediaTypeOf(contentType);
    if (operation === undefined) {
      const fallback = pathItem ? fallbackStatus.unknownMethod : fallbackStatus.unknownPath;
      if (status !== fallback || mediaType !== 'application/problem+json') {
        throw new ContractViolation(
          `${where}: ${pathItem ? 'method' : 'path'} not in /openapi.yaml, so the only answer allowed is the router's ${fallback} problem`,
        );
      }
      return {
        where,
        mediaType,
        schemaPointer: pointer('components', 'schemas', 'Problem'),
        bodyless: false,
      };
    }
    const statusKey = [String(status), `${String(status)[0]}XX`, 'default'].find(
      (key) => operation.responses[key] !== undefined,
    );
    if (statusKey === undefined) {
      throw new ContractViolation(
        `${where}: status not documented (documented: ${Object.keys(operation.responses).join(', ')})`,
      );
    }
    const content = operation.responses[statusKey]!.content ?? {};
    if (Object.keys(content).length === 0) {
      return { where, mediaType, schemaPointer: undefined, bodyless: true };
    }
    const mediaKey = Object.keys(content).find((key) => key.toLowerCase() === mediaType);
    if (mediaKey === undefined) {
      throw new ContractViolation(
        `${where}: content type not documented (documented: ${Object.keys(content).join(', ')})`,
      );
    }
    const schemaPointer =
      content[mediaKey]!.schema === undefined
        ? undefined
        : pointer(
            'paths',
            documentPath!,
            verb,
            'responses',
            statusKey,
            'content',
            mediaKey,
            'schema',
          );
    return { where, mediaType, schemaPointer, bodyless: false };
  }

  /** The document's path with `{name}` segments (/admin/keys/{id}) that this path fills in. */
  private templateOf(path: string): string | undefined {
    const segments = path.split('/');
    for (const template of Object.keys(this.document.paths)) {
      if (!template.includes('{')) continue;
      const parts = template.split('/');
      if (
        parts.length === segments.length &&
        parts.every((part, i) => /^\{\w+\}$/.test(part) || part === segments[i])
      )
        return template;
    }
    return undefined;
  }

  checkBody(expected: Expectation, bodyText: string): void {
    const { where } = expected;
    if (expected.bodyless) {
      if (bodyText !== '')
        throw new ContractViolation(`${where}: documented without a body, got one`);
      return;
    }
    if (expected.schemaPointer === undefined) return;
    const validate = this.validator(expected.schemaPointer);
    for (const [index, value] of this.parse(expected.mediaType, bodyText, where).entries()) {
      if (!validate(value)) {
        const item = expected.mediaType === 'application/x-ndjson' ? ` (line ${index + 1})` : '';
        throw new ContractViolation(
          `${where}: body${item} does not match ${expected.schemaPointer}: ${this.ajv.errorsText(validate.errors)}\n${bodyText.slice(0, 2000)}`,
        );
      }
    }
  }

  /** Compiles the schema at a JSON pointer into the document (cached). */
  validator(schemaPointer: string): ValidateFunction {
    let validate = this.validators.get(schemaPointer);
    if (validate === undefined) {
      validate = this.ajv.compile({ $ref: `${documentId}#${schemaPointer}` });
      this.validators.set(schemaPointer, validate);
    }
    return validate;
  }

  /** Every response body schema the document declares, as pointers (for compiling them all). */
  responseSchemaPointers(): string[] {
    const pointers: string[] = [];
    for (const [path, pathItem] of Object.entries(this.document.paths)) {
      for (const verb of httpMethods) {
        const operation = pathItem[verb] as OperationObject | undefined;
        for (const [status, response] of Object.entries(operation?.responses ?? {})) {
          for (const [mediaKey, media] of Object.entries(response.content ?? {})) {
            if (media.schema === undefined) continue;
            pointers.push(
              pointer('paths', path, verb, 'responses', status, 'content', mediaKey, 'schema'),
            );
          }
        }
      }
    }
    return pointers;
  }

  private parse(mediaType: string, bodyText: string, where: string): unknown[] {
    const parseJson = (text: string): unknown => {
      try {
        return JSON.parse(text);
      } catch {
        throw new ContractViolation(`${where}: body is not JSON: ${text.slice(0, 200)}`);
      }
    };
    if (isJson(mediaType)) return [parseJson(bodyText)];
    if (mediaType === 'application/x-ndjson') {
      return bodyText
        .split('\n')
        .filter((line) => line !== '')
        .map(parseJson);
    }
    return [bodyText];
  }
}

interface Watched {
  readonly contract: ResponseContract;
  readonly violations: ContractViolation[];
}

/** Test servers by origin (`http://127.0.0.1:PORT`). */
const watched = new Map<string, Watched>();
let realFetch: typeof fetch | undefined;

/**
 * Checks every fetch response from `origin` against the document from now on; a response that
 * breaks it makes that fetch reject with a ContractViolation. Returns `unwatch`, which stops
 * watching and throws if any violation happened, so one swallowed by a retry loop or a load
 * generator's catch still fails the file. PULSE_CONTRACT_CHECK=off turns the watching off.
 */
export function watchResponses(origin: string, document: OpenApiDocument): () => void {
  if (process.env.PULSE_CONTRACT_CHECK === 'off') return () => undefined;
  installFetchWrapper();
  const entry: Watched = { contract: new ResponseContract(document), violations: [] };
  watched.set(origin, entry);
  return () => {
    if (watched.get(origin) === entry) watched.delete(origin);
    if (entry.violations.length > 0) {
      throw new AggregateError(
        entry.violations,
        `${entry.violations.length} response(s) from ${origin} broke /openapi.yaml:\n` +
          entry.violations.map((v) => v.message.split('\n')[0]).join('\n'),
      );
    }
  };
}

function installFetchWrapper(): void {
  if (realFetch !== undefined) return;
  const original = globalThis.fetch;
  realFetch = original;
  globalThis.fetch = async (input, init) => {
    const res = await original(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    const entry = watched.get(url.origin);
    if (entry === undefined) return res;
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const record = (err: unknown): never => {
      if (err instanceof ContractViolation) entry.violations.push(err);
      throw err;
    };
    const contentType = res.headers.get('content-type');
    let expected: Expectation;
    try {
      expected = entry.contract.checkHead(method, url.href, res.status, contentType);
    } catch (err) {
      return record(err);
    }
    if (res.headers.has('content-length')) {
      // A whole body is already on its way: read a copy now, so even unread bodies are checked.
      let text: string;
      try {
        text = await res.clone().text();
      } catch {
        return res; // the connection broke mid-body; the suite sees that on its own read
      }
      try {
        entry.contract.checkBody(expected, text);
      } catch (err) {
        return record(err);
      }
      return res;
    }
    // Streamed (export NDJSON): reading a copy eagerly would defeat backpressure tests, so the
    // body is checked when the suite reads it with text() or json(); other readers go unchecked.
    const text = res.text.bind(res);
    const checkedText = async (): Promise<string> => {
      const body = await text();
      try {
        entry.contract.checkBody(expected, body);
      } catch (err) {
        return record(err);
      }
      return body;
    };
    Object.defineProperty(res, 'text', { value: checkedText });
    Object.defineProperty(res, 'json', {
      value: async (): Promise<unknown> => JSON.parse(await checkedText()),
    });
    return res;
  };
}
