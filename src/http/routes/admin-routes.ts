// The admin API: projects, their keys and their limits. A root key (API_KEYS) manages every
// project; an admin key only its own. Each change is reloaded here before the answer, so this
// process applies it at once; the others follow through LISTEN/NOTIFY or their poll.
import type pg from 'pg';
import type { Logger } from 'pino';
import { isRootCaller, type Caller } from '../../access/caller.js';
import {
  createKey,
  keyJson,
  parseId,
  projectJson,
  projectSettingsJson,
} from '../../access/manage-access.js';
import type { Config } from '../../config.js';
import { problem, type Problem } from '../../errors.js';
import { findKey, listKeys, revokeKey } from '../../sql/api-keys.js';
import { insertProject, listProjects, updateProject } from '../../sql/projects.js';
import {
  checkKeyCreate,
  checkProjectCreate,
  checkProjectUpdate,
  type AdminRequestResult,
} from '../../validation/validate-admin-request.js';
import { parseJsonBody } from '../../validation/validate-events.js';
import { insufficientScopeProblem } from '../api-key-auth.js';
import { sendEmpty, sendJson, sendProblem, type Exchange } from '../exchange.js';
import { checkBodyHead, readBody } from '../read-body.js';
import type { RequestHead } from '../request-head.js';
import type { Route } from '../route.js';
import { adminDocumentation } from './admin-documentation.js';

export interface AdminRouteDeps {
  readonly config: Config;
  readonly pool: pg.Pool;
  /** Reloads this process's access snapshot. */
  readonly reloadAccess: () => Promise<void>;
  readonly log: Logger;
}

type AdminHandler = (
  exchange: Exchange,
  head: RequestHead,
  caller: Caller,
  deps: AdminRouteDeps,
) => Promise<void>;

/** The project a path names, if this caller may manage it; else the problem to answer. */
async function projectFor(
  head: RequestHead,
  caller: Caller,
  pool: pg.Pool,
): Promise<{ id: number } | Problem> {
  const id = parseId(head.pathParameter ?? '');
  if (isRootCaller(caller)) {
    if (id !== null && (await listProjects(pool, id)).length > 0) return { id };
    return problem('project_not_found', 'No project has this id.');
  }
  // Another project's existence is not an admin key's business: 403 whether it exists or not.
  if (id !== caller.projectId)
    return problem('other_project', 'An admin key manages its own project only.');
  return { id };
}

/** Reads and checks a JSON body; answers the problem itself and returns null when it is bad. */
async function readAdminBody<T>(
  exchange: Exchange,
  head: RequestHead,
  config: Config,
  check: (value: unknown) => AdminRequestResult<T>,
): Promise<T | null> {
  const refusal = checkBodyHead(head, config);
  if (refusal) {
    refuseBeforeBody(exchange, refusal);
    return null;
  }
  const read = await readBody(exchange, head, config);
  if (!read.ok) {
    sendProblem(exchange, read.problem, { close: read.close });
    return null;
  }
  const parsed = parseJsonBody(read.body);
  const checked = parsed.ok ? check(parsed.value) : parsed;
  if (checked.ok) return checked.value;
  sendProblem(exchange, checked.problem);
  return null;
}

/** Unread body bytes would be parsed as the next request: close, a turn later (see ingest). */
function refuseBeforeBody(exchange: Exchange, p: Problem): void {
  setImmediate(() => sendProblem(exchange, p, { close: true }));
}

const createProject: AdminHandler = async (exchange, head, caller, deps) => {
  if (!isRootCaller(caller)) return sendProblem(exchange, insufficientScopeProblem('root'));
  const body = await readAdminBody(exchange, head, deps.config, checkProjectCreate);
  if (body === null) return;
  const row = await insertProject(deps.pool, body.name);
  if (row === 'name_taken')
    return sendProblem(exchange, problem('project_name_taken', 'A project has this name.'));
  await deps.reloadAccess();
  sendJson(exchange, 201, projectJson(row));
};

const listAllProjects: AdminHandler = async (exchange, _head, caller, deps) => {
  const rows = await listProjects(deps.pool, isRootCaller(caller) ? null : caller.projectId);
  sendJson(exchange, 200, { projects: rows.map(projectJson) });
};

const createProjectKey: AdminHandler = async (exchange, head, caller, deps) => {
  // The body is read from the start: uWS hands its bytes over only to a reader already attached.
  const reading = readAdminBody(exchange, head, deps.config, checkKeyCreate);
  const project = await projectFor(head, caller, deps.pool);
  const body = await reading;
  if (body === null) return;
  if (!('id' in project)) return sendProblem(exchange, project);
  const created = await createKey(deps.pool, project.id, body.scope, body.name ?? null);
  await deps.reloadAccess();
  sendJson(exchange, 201, created);
};

const listProjectKeys: AdminHandler = async (exchange, head, caller, deps) => {
  const project = await projectFor(head, caller, deps.pool);
  if (!('id' in project)) return sendProblem(exchange, project);
  sendJson(exchange, 200, { keys: (await listKeys(deps.pool, project.id)).map(keyJson) });
};

const changeProject: AdminHandler = async (exchange, head, caller, deps) => {
  const reading = readAdminBody(exchange, head, deps.config, checkProjectUpdate);
  const project = await projectFor(head, caller, deps.pool);
  const body = await reading;
  if (body === null) return;
  if (!('id' in project)) return sendProblem(exchange, project);
  const row = await updateProject(deps.pool, project.id, body);
  if (row === null) return sendProblem(exchange, problem('project_not_found', 'No such project.'));
  await deps.reloadAccess();
  sendJson(exchange, 200, projectSettingsJson(row));
};

const revokeProjectKey: AdminHandler = async (exchange, head, caller, deps) => {
  const id = parseId(head.pathParameter ?? '');
  const key = id === null ? null : await findKey(deps.pool, id);
  if (key === null) return sendProblem(exchange, problem('key_not_found', 'No key has this id.'));
  if (!isRootCaller(caller) && key.project_id !== caller.projectId)
    return sendProblem(
      exchange,
      problem('other_project', 'An admin key manages its own project only.'),
    );
  await revokeKey(deps.pool, key.id);
  await deps.reloadAccess();
  sendEmpty(exchange, 204, {});
};

const handlers: readonly [Route['method'], string, AdminHandler, boolean][] = [
  ['post', '/admin/projects', createProject, true],
  ['get', '/admin/projects', listAllProjects, false],
  ['patch', '/admin/projects/:id', changeProject, true],
  ['post', '/admin/projects/:id/keys', createProjectKey, true],
  ['get', '/admin/projects/:id/keys', listProjectKeys, false],
  ['delete', '/admin/keys/:id', revokeProjectKey, false],
];

export function adminRoutes(deps: AdminRouteDeps): Route[] {
  return handlers.map(([method, path, handle, readsBody]) => ({
    method,
    path,
    auth: 'admin',
    keyedWhenOpen: true,
    refusedWhileDraining: true,
    readsHead: true,
    ...(readsBody ? { refuse: refuseBeforeBody } : {}),
    handler: (exchange, head, caller) => {
      handle(exchange, head, caller, deps).catch((err: unknown) => {
        deps.log.warn({ err: (err as Error).message, path }, 'admin request failed');
        sendProblem(
          exchange,
          problem('database_unavailable', 'The change could not be made in the database.', {
            retryAfterSeconds: deps.config.retryAfterSeconds,
          }),
        );
      });
    },
    ...adminDocumentation(method, path),
  }));
}
