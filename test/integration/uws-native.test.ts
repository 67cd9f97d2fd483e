// The older uWS build silently swaps in a slow JS server when its native binary does not load; the
// service must notice and refuse to start, and say which build serves when one does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNativeUws, loadNativeUws, type Uws } from '../../src/http/load-uws.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runMainToExit, spawnServer } from '../helpers/server.js';
import { perUwsBuild, servingUwsBuild } from '../helpers/uws-build.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

describe('the uWebSockets.js binary', () => {
  it('is the native module in this environment', () => {
    expect(isNativeUws(loadNativeUws().uws)).toBe(true);
  });

  it('is not mistaken for native when App is a plain JS function', () => {
    const fallbackLike = { App: () => ({}), getParts: () => [] } as unknown as Uws;
    expect(isNativeUws(fallbackLike)).toBe(false);
  });

  it('logs the build serving in its listening line', async () => {
    const server = await spawnServer(db.dsn);
    server.child.kill('SIGTERM');
    await server.exited;
    const { packageName, version } = servingUwsBuild;
    expect(server.lines.find((line) => line.includes('"msg":"listening"'))).toContain(
      `"uws":"${packageName}@${version}"`,
    );
  });

  it('with UWS_USE_FALLBACK=1: refuses to start on 20.30 (it falls back), starts on 20.57 (it has no fallback)', async () => {
    const check = perUwsBuild({
      '20.30': async () => {
        const { code, output } = await runMainToExit({
          UWS_USE_FALLBACK: '1',
          POSTGRES_DSN: db.dsn,
        });
        expect([code === 0, code === null]).toEqual([false, false]);
        expect(output).toMatch(/No uWebSockets\.js build loads its native binary here/);
        expect(output).toMatch(/uws-20\.30: fell back to its JS server/);
        expect(output).not.toMatch(/"msg":"listening"/);
      },
      '20.57': async () => {
        const server = await spawnServer(db.dsn, { UWS_USE_FALLBACK: '1' });
        server.child.kill('SIGTERM');
        expect(await server.exited).toBe(0);
      },
    });
    await check();
  });
});
