// GET /dashboard and its files over HTTP: served from memory with a strict CSP, gzip when accepted,
// ETag/304, and `/` sending a browser there.
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDashboardPage } from '../../src/http/dashboard-page.js';
import { acceptsGzip } from '../../src/http/routes/dashboard-routes.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.dsn, { INGEST_WORKERS: '1', ROLLUP_REFRESH_MS: '3600000' });
});
afterAll(async () => {
  await server?.stop();
  await db?.close();
});

/** A GET whose body is left as sent (fetch would inflate it). */
function getRaw(
  path: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GET /dashboard', () => {
  it('answers the page with a CSP that allows no inline script and nothing off its origin', async () => {
    const res = await fetch(`${server.url}/dashboard`);
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect(html.match(/<script[^>]*>/g)).toEqual([
      '<script type="module" src="/dashboard/app.js">',
    ]);
    expect(html).toContain('href="/dashboard/app.css"');
  });

  it('sends the files gzip-encoded to a client that accepts gzip, and as they are otherwise', async () => {
    for (const path of ['/dashboard', '/dashboard/app.js', '/dashboard/app.css']) {
      const plain = await getRaw(path, { 'accept-encoding': 'identity' });
      const gzipped = await getRaw(path, { 'accept-encoding': 'br, gzip' });
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(gzipped.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(gzipped.body).equals(plain.body)).toBe(true);
      expect(gzipped.body.length).toBeLessThan(plain.body.length);
      expect(gzipped.headers.vary).toBe('accept-encoding');
    }
  });

  it('answers 304 to a request that holds the current ETag, and asks caches to revalidate', async () => {
    const first = await fetch(`${server.url}/dashboard/app.js`);
    const etag = first.headers.get('etag')!;
    expect(first.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(first.headers.get('cache-control')).toBe('no-cache');
    const again = await fetch(`${server.url}/dashboard/app.js`, {
      headers: { 'if-none-match': etag },
    });
    expect([again.status, await again.text()]).toEqual([304, '']);
  });

  it('redirects / to /dashboard', async () => {
    const res = await fetch(`${server.url}/`, { redirect: 'manual' });
    expect([res.status, res.headers.get('location')]).toEqual([302, '/dashboard']);
  });
});

describe('the built page', () => {
  it('is reported missing, naming the file, when the build did not make it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-no-dashboard-'));
    expect(loadDashboardPage(dir)).toEqual({ ok: false, missing: join(dir, 'index.html') });
  });
});

describe('Accept-Encoding', () => {
  it('accepts gzip when listed without q=0', () => {
    const cases = ['gzip', 'deflate, gzip;q=0.5', 'x-gzip', 'gzip;q=0', 'br', '', 'gzipx'];
    expect(cases.map(acceptsGzip)).toEqual([true, true, true, false, false, false, false]);
  });
});
