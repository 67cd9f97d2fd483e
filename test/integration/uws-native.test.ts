// uWS's npm package silently swaps in a slow JS server when its native binary does not load; the
// service must notice and refuse to start.
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNativeUws, loadNativeUws, type Uws } from '../../src/http/load-uws.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runMainToExit } from '../helpers/server.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

describe('the uWebSockets.js binary', () => {
  it('is the native module in this environment', () => {
    const uws = createRequire(import.meta.url)('uWebSockets.js') as Uws;
    expect(isNativeUws(uws)).toBe(true);
  });

  it('loads through loadNativeUws without throwing', () => {
    expect(typeof loadNativeUws().App).toBe('function');
  });

  it('is not mistaken for native when App is a plain JS function', () => {
    const fallbackLike = { App: () => ({}), getParts: () => [] } as unknown as Uws;
    expect(isNativeUws(fallbackLike)).toBe(false);
  });

  it('refuses to start on the JS fallback (UWS_USE_FALLBACK=1) with a clear message', async () => {
    const { code, output } = await runMainToExit({ UWS_USE_FALLBACK: '1', POSTGRES_DSN: db.dsn });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(output).toMatch(/fell back to its JS server; refusing to start/);
    expect(output).not.toMatch(/"msg":"listening"/);
  });
});
