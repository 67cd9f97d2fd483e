// A route as one value. The server registers it, lists it in the 405 table and documents it in
// /openapi.yaml from the same list, so the three cannot disagree.
import type { KeyScope } from '../access/access-snapshot.js';
import type { Caller } from '../access/caller.js';
import type { Problem } from '../errors.js';
import type { Exchange, Headers } from './exchange.js';
import type { RequestHead } from './request-head.js';

/** An OpenAPI operation object (summary, parameters, requestBody, responses). */
export type OpenApiOperation = Readonly<Record<string, unknown>>;

/** The scope of key a route needs, or none. Root keys (API_KEYS) pass every scope; in open mode
 *  (no API_KEYS, no stored key) a keyed route lets everyone in unless it is keyedWhenOpen. */
export type RouteAuth = 'none' | KeyScope;

/** Called once the preamble has passed: the head is within MAX_HEADER_BYTES, the server is not
 *  shutting down (where the route refuses then) and the caller is authorized: the project it acts
 *  for, and the key that matched (null when the route needs none or no keys are configured). */
export type RouteHandler = (exchange: Exchange, head: RequestHead, caller: Caller) => void;

export interface Route {
  readonly method: 'get' | 'post' | 'patch' | 'delete' | 'options';
  readonly path: string;
  readonly auth: RouteAuth;
  /** Needs a key even in open mode (the admin API): nobody may manage access without one. */
  readonly keyedWhenOpen?: boolean;
  /** Answered 503 shutting_down once shutdown has begun, on connections still open. */
  readonly refusedWhileDraining: boolean;
  /** False for a route that reads nothing from the request: no header can make it fail, so a
   *  health probe never gets 431, and its handler is given an empty head. */
  readonly readsHead: boolean;
  /** Headers for every answer of the exchange, including the preamble's refusals (CORS). */
  readonly responseHeaders?: (head: RequestHead) => Headers | undefined;
  /** How the preamble's refusals are sent; by default as they are, closing the connection when
   *  the server is shutting down. */
  readonly refuse?: (exchange: Exchange, problem: Problem, close: boolean) => void;
  readonly handler: RouteHandler;
  /** Its entry in /openapi.yaml; `security` is added from auth. */
  readonly operation: OpenApiOperation;
  /** The response schemas its operation refers to, by their name in components/schemas. */
  readonly schemas?: Readonly<Record<string, unknown>>;
}
