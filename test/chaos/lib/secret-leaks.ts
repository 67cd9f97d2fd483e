// Neither an API key nor the database password may ever reach a log line, on
// any path (401s, database errors, crashes, shutdown). Every chaos scenario greps what its servers
// printed.

/** The secrets a scenario's servers were given: its API keys and the password inside the DSN. */
export function secretsOf(dsn: string, apiKeys: readonly string[]): string[] {
  const password = decodeURIComponent(new URL(dsn).password);
  // Both spellings: a DSN printed whole carries the percent-encoded form.
  return [...new Set([...apiKeys, password, encodeURIComponent(password)])].filter(
    (s) => s.length >= 8, // a short secret would match by accident; ours are long and random
  );
}

/** Lines that contain any of the secrets (empty when nothing leaked). */
export function linesLeakingSecrets(
  lines: readonly string[],
  secrets: readonly string[],
): string[] {
  return lines.filter((line) => secrets.some((secret) => line.includes(secret)));
}

/** Requests that carry the key where a careless server would log it: in the query string (never
 *  read from there: 401, and the URL must not be logged), as a Bearer token on a body that fails
 *  (400), and inside a longer, wrong key (401). Returns the statuses, in that order; the caller
 *  then greps the server's lines. */
export async function sendSecretBearingRequests(url: string, apiKey: string): Promise<number[]> {
  const post = (path: string, headers: Record<string, string>, body: string) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      signal: AbortSignal.timeout(10_000),
    });
  const valid = JSON.stringify({
    events: [{ event_name: 'secret-probe', user_id: 'u', timestamp: 1_700_000_000 }],
  });
  const responses = [
    await post(`/events/bulk?api_key=${encodeURIComponent(apiKey)}`, {}, valid),
    await post('/events/bulk', { authorization: `Bearer ${apiKey}` }, '{"events": [ oops'),
    await post('/events/bulk', { 'x-api-key': `${apiKey}-not-it` }, valid),
    await fetch(`${url}/metrics?from=1&to=2&api_key=${encodeURIComponent(apiKey)}`, {
      signal: AbortSignal.timeout(10_000),
    }),
  ];
  for (const res of responses) await res.arrayBuffer();
  return responses.map((res) => res.status);
}
