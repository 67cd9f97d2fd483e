// Calls to the admin API as a script would make them: JSON in, status and JSON out.

export interface AdminAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

export async function callApi(
  baseUrl: string,
  method: string,
  path: string,
  key: string | null,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<AdminAnswer> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...(key === null ? {} : { 'x-api-key': key }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  const json: unknown = /^application\/(problem\+)?json/.test(type) ? JSON.parse(text) : {};
  return { status: res.status, headers: res.headers, body: json as Record<string, unknown> };
}

/** A project and a key of each scope in it, made with a root key. */
export async function createProjectWithKeys(
  baseUrl: string,
  rootKey: string,
  name: string,
): Promise<{
  id: string;
  write: string;
  read: string;
  admin: string;
  keyIds: Record<string, string>;
}> {
  const project = await callApi(baseUrl, 'POST', '/admin/projects', rootKey, { name });
  if (project.status !== 201) throw new Error(`project ${name}: ${project.status}`);
  const id = project.body.id as string;
  const keys: Record<string, string> = {};
  const keyIds: Record<string, string> = {};
  for (const scope of ['write', 'read', 'admin']) {
    const created = await callApi(baseUrl, 'POST', `/admin/projects/${id}/keys`, rootKey, {
      scope,
    });
    if (created.status !== 201) throw new Error(`${scope} key: ${created.status}`);
    keys[scope] = created.body.key as string;
    keyIds[scope] = created.body.id as string;
  }
  return { id, write: keys.write!, read: keys.read!, admin: keys.admin!, keyIds };
}
